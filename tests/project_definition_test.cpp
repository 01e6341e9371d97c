// JobServ-format definitions: good documents parse and expand as documented;
// every bad one is refused with the line and column of its fault.
#include "actors/project_definition.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

using namespace kiln;
using namespace kiln::domain;

namespace {

const char* example = R"(timeout: 5
params:
  LEVEL: project
triggers:
  - name: merge
    type: git_poller
    params:
      GIT_URL: "https://git.example.com/app.git"
      GIT_POLL_REFS: "refs/heads/main"
      LEVEL: trigger
    runs:
      - name: build-{loop}
        host-tag: amd64
        script: compile
        params:
          LEVEL: run
        loop-on:
          - param: CC
            values: [gcc, clang]
        triggers:
          - name: post-build
            run-names: "{name}-{loop}"
  - name: post-build
    type: simple
    runs:
      - name: smoke
        host-tag: amd64
        script: smoke
        timeout: 2
        test-grepping:
          test-pattern: '^(?P<name>\S+): (?P<result>PASS|FAIL)$'
          result-pattern: '(?P<result>PASS|FAIL)'
          fixupdict: {PASS: PASSED, FAIL: FAILED}
scripts:
  compile: |
    #!/bin/sh -ex
    make CC=$CC && cp app $ARCHIVE/
  smoke: |
    #!/bin/sh -ex
    ./app --self-test
)";

// The message of a definition that must fail.
std::string error_of(const std::string& yaml) {
  auto r = parse_project_definition(yaml);
  if (r)
    FAIL("expected an error for:\n" << yaml);
  CHECK(r.error().code == "invalid_definition");
  return r.error().message;
}

} // namespace

TEST_CASE("the documented example parses", "[definition]") {
  auto def = parse_project_definition(example);
  INFO((def ? "" : def.error().message));
  REQUIRE(def);
  CHECK(def->timeout_minutes == 5);
  REQUIRE(def->triggers.size() == 2);
  auto& merge = def->triggers[0];
  CHECK(merge.type == trigger_type::git_poller);
  REQUIRE(merge.runs.size() == 1);
  CHECK(merge.runs[0].loop_on[0].values == std::vector<std::string>{"gcc", "clang"});
  REQUIRE(merge.runs[0].triggers.size() == 1);
  CHECK(merge.runs[0].triggers[0].run_names == "{name}-{loop}");
  auto& smoke = def->triggers[1].runs[0];
  CHECK(smoke.timeout_seconds == 120);
  REQUIRE(smoke.grepping);
  CHECK(smoke.grepping->fixupdict.at("FAIL") == "FAILED");
  CHECK(def->scripts.at("smoke").find("--self-test") != std::string::npos);
}

TEST_CASE("loop-on expands to the cartesian product with layered params", "[definition]") {
  auto def = parse_project_definition(R"(timeout: 1
params: {A: project, B: project, C: project, D: project}
triggers:
  - name: t
    type: simple
    params: {B: trigger, C: trigger, D: trigger}
    runs:
      - name: unit-{loop}
        host-tag: amd64
        script: s
        params: {C: run, D: run}
        loop-on:
          - param: CC
            values: [gcc, clang]
          - param: host-tag
            values: [amd64, arm64]
scripts: {s: "true"}
)");
  INFO((def ? "" : def.error().message));
  REQUIRE(def);
  auto runs = expand_trigger(*def, def->triggers[0], {{"D", "build"}});
  REQUIRE(runs);
  REQUIRE(runs->size() == 4);
  CHECK((*runs)[0].name == "unit-gcc-amd64");
  CHECK((*runs)[1].name == "unit-gcc-arm64");
  CHECK((*runs)[2].name == "unit-clang-amd64");
  CHECK((*runs)[3].name == "unit-clang-arm64");
  CHECK((*runs)[1].host_tag == "arm64");
  CHECK((*runs)[3].loop == "clang-arm64");
  auto& p = (*runs)[2].params;
  CHECK(p.at("A") == "project");
  CHECK(p.at("B") == "trigger");
  CHECK(p.at("C") == "run");
  CHECK(p.at("D") == "build");
  CHECK(p.at("CC") == "clang");
  CHECK(p.count("host-tag") == 0);
}

TEST_CASE("bad definitions name the line and column of the fault", "[definition]") {
  struct bad_case {
    std::string yaml;
    std::string expect;  // the message contains this
  };
  const char* head = "timeout: 5\nscripts: {s: \"true\"}\ntriggers:\n  - name: t\n    type: simple\n"
                     "    runs:\n";
  auto with_run = [&](const std::string& run) { return std::string{head} + run; };
  const std::vector<bad_case> cases = {
    {"timeout: 5\ntriggers:\n  - name: t\n    type: simple\n    bogus: 1\n    runs: []\n",
     "line 5, column 5: unknown key 'bogus' in a trigger"},
    {"timeout: five\ntriggers: []\n", "line 1, column 10: 'timeout' must be a whole number"},
    {"triggers:\n  - name: t\n", "line 1, column 1: the project definition needs 'timeout'"},
    {"timeout: 5\ntimeout: 6\ntriggers: []\n", "line 2, column 1: duplicate key 'timeout'"},
    {"timeout: 5\ntriggers: {a: 1}\n", "line 2, column 11: 'triggers' must be a non-empty list"},
    {"timeout: 5\ntriggers:\n  - name: t\n    type: nightly\n    runs: [{name: a}]\n",
     "line 4, column 11: unknown trigger type 'nightly'"},
    {"timeout: 5\ntriggers: [\n", "line 3, column 1:"},  // a YAML syntax error
    {with_run("      - name: a\n        host-tag: x\n"),
     "line 7, column 9: run 'a' needs exactly one of 'script' and 'script-repo'"},
    {with_run("      - name: a\n        host-tag: x\n        script: s\n        script-repo: "
              "{name: r, path: p}\n"),
     "line 7, column 9: run 'a' needs exactly one of 'script' and 'script-repo'"},
    {with_run("      - name: a\n        host-tag: x\n        script: nope\n"),
     "line 9, column 17: run 'a' names script 'nope'"},
    {with_run("      - name: a-{loop}\n        host-tag: x\n        script: s\n        loop-on:\n"
              "          - param: P\n            values: [1, 1]\n"),
     "line 7, column 9: run name 'a-1' appears twice"},
    {with_run("      - name: a\n        host-tag: x\n        script: s\n      - name: a\n"
              "        host-tag: x\n        script: s\n"),
     "line 10, column 9: run name 'a' appears twice"},
    {with_run("      - name: a\n        host-tag: x\n        script: s\n        triggers:\n"
              "          - name: ghost\n"),
     "line 11, column 13: chained trigger 'ghost' names no trigger"},
    {with_run("      - name: a\n        host-tag: x\n        script: s\n        timeout: -1\n"),
     "line 10, column 18: 'timeout' of run 'a' must be a whole number above 0"},
    {with_run("      - name: a\n        host-tag: [x]\n        script: s\n"),
     "line 8, column 19: 'host-tag' of run 'a' must be a value, not a list"},
    {with_run("      - name: a\n        host-tag: x\n        script: s\n        test-grepping:\n"
              "          result-pattern: '(?P<result>PASS'\n"),
     "line 11, column 27: 'result-pattern' of run 'a' is not a valid regular expression"},
    {with_run("      - name: a\n        host-tag: x\n        script: s\n        privileged: maybe\n"),
     "line 10, column 21: 'privileged' of run 'a' must be true or false"},
    {"timeout: 5\ntriggers:\n  - name: c\n    type: cron\n    runs: [{name: a, host-tag: x, "
     "script: s}]\nscripts: {s: x}\n",
     "line 3, column 5: trigger 'c' is a cron trigger and needs 'schedule'"},
    {"timeout: 5\ntriggers:\n  - name: g\n    type: git_poller\n    runs: [{name: a, host-tag: x, "
     "script: s}]\nscripts: {s: x}\n",
     "line 3, column 5: trigger 'g' is a git_poller and needs GIT_URL"},
    {"timeout: 5\ntriggers:\n  - {name: t, type: simple, runs: [{name: a, host-tag: x, script: s}]}\n"
     "  - {name: t, type: simple, runs: [{name: b, host-tag: x, script: s}]}\nscripts: {s: x}\n",
     "line 4, column 5: duplicate trigger name 't'"},
    {"", "line 1, column 1: the definition is empty"},
  };
  for (auto& c : cases) {
    INFO("definition:\n" << c.yaml);
    auto message = error_of(c.yaml);
    INFO("message: " << message);
    CHECK(message.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("the sample project that `deploy/dev.sh up` loads is valid", "[definition]") {
  std::ifstream in{SAMPLE_PROJECT};
  REQUIRE(in);
  std::string yaml{std::istreambuf_iterator<char>(in), {}};
  auto def = parse_project_definition(yaml);
  INFO((def ? "" : def.error().message));
  REQUIRE(def);
  auto ci = def->find_trigger("ci");
  REQUIRE(ci);
  auto runs = expand_trigger(*def, *ci, {});
  REQUIRE(runs);
  CHECK(runs->size() == 3);  // unit-test, build-debug, build-release
}
