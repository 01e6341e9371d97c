#include "worker/test_results.hpp"

#include <expat.h>
#include <re2/re2.h>

#include <cstdio>
#include <cstring>

namespace kiln::worker {

namespace fs = std::filesystem;

bool test_suite::failed() const {
  for (auto& t : results)
    if (t.status == "FAILED")
      return true;
  return false;
}

// ---- JUnit XML ----

namespace {

struct junit_reader {
  test_suite suite;
  std::string suite_name;
  bool in_case = false;
  bool in_text = false;  // inside <failure>/<error>: collect the text
  test_case current;

  static const char* attr(const char** atts, const char* name) {
    for (int i = 0; atts[i]; i += 2)
      if (std::strcmp(atts[i], name) == 0)
        return atts[i + 1];
    return nullptr;
  }

  void start(const char* el, const char** atts) {
    if (!std::strcmp(el, "testsuite")) {
      if (auto n = attr(atts, "name"); n && suite_name.empty())
        suite_name = n;
    } else if (!std::strcmp(el, "testcase")) {
      in_case = true;
      current = {};
      auto cls = attr(atts, "classname");
      auto name = attr(atts, "name");
      current.name = (cls && *cls ? std::string{cls} + "." : std::string{}) + (name ? name : "?");
      current.status = "PASSED";
      if (auto t = attr(atts, "time"))
        current.duration_ms = static_cast<std::uint64_t>(std::atof(t) * 1000.0);
    } else if (in_case && (!std::strcmp(el, "failure") || !std::strcmp(el, "error"))) {
      current.status = "FAILED";
      if (auto m = attr(atts, "message"))
        current.message = m;
      in_text = true;
    } else if (in_case && !std::strcmp(el, "skipped")) {
      if (current.status != "FAILED")
        current.status = "SKIPPED";
      if (auto m = attr(atts, "message"))
        current.message = m;
    }
  }
  void end(const char* el) {
    if (!std::strcmp(el, "testcase") && in_case) {
      suite.results.push_back(std::move(current));
      in_case = false;
    } else if (!std::strcmp(el, "failure") || !std::strcmp(el, "error")) {
      in_text = false;
    }
  }
  void text(const char* s, int n) {
    // The message attribute, else the first 4 KiB of the element's text.
    if (in_text && current.message.size() < 4096)
      current.message.append(s, static_cast<std::size_t>(n));
  }
};

} // namespace

result<test_suite> parse_junit(const fs::path& file) {
  std::FILE* in = std::fopen(file.c_str(), "rb");
  if (!in)
    return error{"io", "cannot read " + file.string()};
  junit_reader r;
  XML_Parser p = XML_ParserCreate(nullptr);
  XML_SetUserData(p, &r);
  XML_SetElementHandler(
    p,
    [](void* u, const XML_Char* el, const XML_Char** atts) {
      static_cast<junit_reader*>(u)->start(el, atts);
    },
    [](void* u, const XML_Char* el) { static_cast<junit_reader*>(u)->end(el); });
  XML_SetCharacterDataHandler(p, [](void* u, const XML_Char* s, int n) {
    static_cast<junit_reader*>(u)->text(s, n);
  });
  char buf[1 << 16];
  std::optional<error> failure;
  for (;;) {
    auto n = std::fread(buf, 1, sizeof buf, in);
    bool last = n < sizeof buf;
    if (XML_Parse(p, buf, static_cast<int>(n), last) == XML_STATUS_ERROR) {
      failure = error{"bad_junit", file.filename().string() + ":"
                                     + std::to_string(XML_GetCurrentLineNumber(p)) + ":"
                                     + std::to_string(XML_GetCurrentColumnNumber(p) + 1) + ": "
                                     + XML_ErrorString(XML_GetErrorCode(p))};
      break;
    }
    if (last)
      break;
  }
  XML_ParserFree(p);
  std::fclose(in);
  if (failure)
    return *failure;
  r.suite.name = r.suite_name.empty() ? file.filename().string() : r.suite_name;
  return std::move(r.suite);
}

// ---- test-grepping ----

struct test_grepper::impl {
  std::unique_ptr<RE2> test, result;
  std::map<std::string, std::string> fixup;
  std::string partial;  // a line not yet ended
  std::vector<test_suite> suites;
};

result<std::unique_ptr<test_grepper>> test_grepper::make(const grepping_spec& spec) {
  auto p = std::make_unique<impl>();
  RE2::Options o;
  o.set_log_errors(false);
  if (!spec.test_pattern.empty()) {
    p->test = std::make_unique<RE2>(spec.test_pattern, o);
    if (!p->test->ok())
      return error{"bad_pattern", "test-pattern: " + p->test->error()};
  }
  p->result = std::make_unique<RE2>(spec.result_pattern, o);
  if (!p->result->ok())
    return error{"bad_pattern", "result-pattern: " + p->result->error()};
  if (!p->result->NamedCapturingGroups().count("result"))
    return error{"bad_pattern", "result-pattern needs a (?P<result>…) group"};
  p->fixup = spec.fixupdict;
  return std::unique_ptr<test_grepper>{new test_grepper{std::move(p)}};
}

test_grepper::test_grepper(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
test_grepper::~test_grepper() = default;

void test_grepper::feed(std::string_view bytes) {
  auto& p = *impl_;
  for (;;) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      p.partial.append(bytes);
      if (p.partial.size() > 64 * 1024)  // no line is that long; do not grow forever
        p.partial.erase(0, p.partial.size() - 64 * 1024);
      return;
    }
    p.partial.append(bytes.substr(0, nl));
    line(p.partial);
    p.partial.clear();
    bytes.remove_prefix(nl + 1);
  }
}

namespace {

// The named groups of `re` that matched `l`; empty when it did not match.
std::map<std::string, std::string> match_groups(const RE2& re, std::string_view l) {
  std::vector<re2::StringPiece> m(static_cast<std::size_t>(re.NumberOfCapturingGroups() + 1));
  std::map<std::string, std::string> out;
  if (!re.Match(l, 0, l.size(), RE2::UNANCHORED, m.data(), static_cast<int>(m.size())))
    return out;
  out[""] = std::string{m[0]};
  for (auto& [name, index] : re.NamedCapturingGroups())
    out[name] = std::string{m[static_cast<std::size_t>(index)]};
  return out;
}

} // namespace

// A `test-pattern` line starts a suite named by its `name` group (and is a
// result too when it captures `result`); a `result-pattern` line is a
// result, named by its `name` group or else after the suite.
void test_grepper::line(std::string_view l) {
  auto& p = *impl_;
  if (!l.empty() && l.back() == '\r')
    l.remove_suffix(1);
  auto add = [&](const std::string& name, const std::string& raw) {
    auto status = raw;
    if (auto f = p.fixup.find(raw); f != p.fixup.end())
      status = f->second;
    test_case t{name, status, 0, {}};
    if (status != "PASSED" && status != "FAILED" && status != "SKIPPED") {
      t.status = "FAILED";
      t.message = "result '" + raw + "' is not PASSED, FAILED or SKIPPED (add it to fixupdict)";
    }
    if (p.suites.empty())
      p.suites.push_back({"tests", {}});
    p.suites.back().results.push_back(std::move(t));
  };
  if (p.test) {
    auto g = match_groups(*p.test, l);
    if (!g.empty()) {
      auto name = g.count("name") && !g["name"].empty() ? g["name"] : std::string{"tests"};
      p.suites.push_back({name, {}});
      if (g.count("result") && !g["result"].empty())
        add(name, g["result"]);
      return;
    }
  }
  auto g = match_groups(*p.result, l);
  if (g.empty() || g["result"].empty())
    return;
  auto name = g.count("name") && !g["name"].empty()
                ? g["name"]
                : (p.suites.empty() ? std::string{"test"} : p.suites.back().name);
  add(name, g["result"]);
}

std::vector<test_suite> test_grepper::finish() {
  if (!impl_->partial.empty()) {
    line(impl_->partial);
    impl_->partial.clear();
  }
  return std::move(impl_->suites);
}

} // namespace kiln::worker
