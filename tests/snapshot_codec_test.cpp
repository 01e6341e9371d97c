#include "actors/snapshot_codec.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;

TEST_CASE("snapshot codec: every aggregate state round-trips and a foreign snapshot is refused") {
  project::state p;
  project::apply(p, project_created{"app"});
  project::apply(p, project_definition_updated{3, "timeout: 1\ntriggers:\n  - name: ci\n    type: simple\n    runs:\n      - name: a\n        host-tag: x\n        script: s\nscripts:\n  s: echo\n", "h"});
  project::apply(p, project_secret_set{"k", std::string("\0\1sealed", 8)});
  project::apply(p, build_number_allocated{41, "ci", 3});
  project::state p2;
  REQUIRE(decode_snapshot(encode_snapshot(p), p2));
  CHECK(p2.last_build == 41);
  CHECK(p2.secrets == p.secrets);
  CHECK(p2.definition_version == 3);
  REQUIRE(p2.definition);
  CHECK(p2.definition->find_trigger("ci"));

  run::state r;
  run::apply(r, run_queued{"app", 4, "a", "x", "{\"a\":1}", 1, 60});
  run::apply(r, run_assigned{"w", 1});
  run::apply(r, run_artifact_stored{"out/app", 12, "ff"});
  run::apply(r, run_tests_reported{"unit", {{"t1", status::failed, 5, "boom"}}});
  run::state r2;
  REQUIRE(decode_snapshot(encode_snapshot(r), r2));
  CHECK(r2.worker == "w");
  CHECK(r2.artifacts == r.artifacts);
  CHECK(r2.tests == r.tests);
  CHECK(r2.timeout_s == 60);

  build::state b;
  build::apply(b, build_created{"app", 4, "ci", {{"A", "1"}}, "r", "s", "why", 3, {"a"}, 5, 0});
  build::state b2;
  REQUIRE(decode_snapshot(encode_snapshot(b), b2));
  CHECK(b2.created == b.created);

  worker::state w;
  worker::apply(w, worker_registered{"w", {"x"}, 3, "{}", "hash"});
  worker::state w2;
  REQUIRE(decode_snapshot(encode_snapshot(w), w2));
  CHECK(w2.concurrency == 3);

  CHECK_FALSE(decode_snapshot(encode_snapshot(w), r2));  // a worker's snapshot is no run's
  CHECK_FALSE(decode_snapshot("not json", r2));
}
