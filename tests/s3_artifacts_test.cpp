// Artifacts in S3 end to end (issue 8): a real `kiln up` with its local
// worker and `--artifacts s3://BUCKET/PREFIX` on a real radosgw. A run's
// artifacts land in the bucket byte-identical, with the sizes and digests
// the log records; downloads through the gateway redirect to a presigned
// URL or proxy the bytes, Range either way; bad credentials stop the start.
#include "kiln_up_fixture.hpp"
#include "s3_fixture.hpp"
#include "events/sha256.hpp"
#include "storage/sigv4.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <set>

using namespace kiln;
using namespace kiln::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A project whose one run, "make", runs `script` (shell lines, indented 4).
std::string make_project(const std::string& top, const std::string& script) {
  return "timeout: 5\n" + top
         + "triggers:\n  - name: ci\n    type: simple\n    runs:\n      - name: make\n"
           "        host-tag: \"*\"\n        script: make\nscripts:\n  make: |\n    #!/bin/sh -e\n"
         + script;
}

const std::string artifacts_project = make_project("", R"(    : > "$ARCHIVE/empty.txt"
    head -c 1024 /dev/urandom > "$ARCHIVE/one kib+=.bin"
    mkdir -p "$ARCHIVE/out"
    head -c 6291456 /dev/urandom > "$ARCHIVE/out/six.bin"
    head -c 7340032 /dev/urandom > "$ARCHIVE/out/seven é.bin"
    head -c 20971520 /dev/urandom > "$ARCHIVE/out/twenty.bin"
)");

std::string fetch(storage::s3_client& s3, const std::string& key) {
  std::string got;
  auto r = s3.get(key, [&](std::string_view b) { got.append(b); return true; });
  INFO(key << ": " << (r ? "" : r.error().message));
  REQUIRE(r);
  return got;
}

json run_detail(kiln_up& up) {
  json run;
  REQUIRE(wait_until([&] {
    auto r = up.api("GET", "/v1/projects/app/builds/1/runs/make");
    run = json::parse(r.body);
    return r.status == 200 && run["status"] != "QUEUED" && run["status"] != "RUNNING";
  }, 120s));
  INFO(run.dump(2));
  REQUIRE(run["status"] == "PASSED");
  return run;
}

std::string encoded(const std::string& path) { return storage::uri_encode(path, true); }

// A fresh bucket, and the credentials `kiln up` finds in its environment.
struct kiln_bucket {
  std::string name = fresh_bucket_name();
  storage::s3_config config = s3_test_config(name);
  storage::s3_client s3{config};
  kiln_bucket() {
    REQUIRE(s3.create_bucket());
    ::setenv("AWS_ACCESS_KEY_ID", s3_access_key, 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", s3_secret_key, 1);
  }
};

} // namespace

TEST_CASE("a run's artifacts go to S3 and come back through the gateway", "[s3][e2e]") {
  kiln_bucket kb;
  auto& [bucket, config, s3] = kb;

  // 5 MiB parts; one streamed PUT up to 6 MiB: each way an upload can go.
  std::vector<std::string> s3_args{"--workers", "1", "--executor", "host", "--artifacts",
                                   "s3://" + bucket + "/ci", "--s3-endpoint", config.endpoint,
                                   "--s3-part-size-mb", "5", "--s3-single-put-max-mb", "6"};
  kiln_up up{s3_args};
  REQUIRE(up.api("PUT", "/v1/projects/app", artifacts_project, {{"Content-Type", "application/yaml"}})
            .status / 100 == 2);
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  auto run = run_detail(up);

  // In the bucket, byte for byte what the log says.
  auto artifacts = run["artifacts"];
  REQUIRE(artifacts.size() == 5);
  std::map<std::string, std::string> bytes;
  for (auto& a : artifacts) {
    auto path = a["path"].get<std::string>();
    auto data = fetch(s3, "ci/app/1/make/" + path);
    INFO(path);
    CHECK(data.size() == a["size"].get<std::size_t>());
    CHECK(kiln::sha256_hex(data) == a["sha256"]);
    bytes[path] = data;
  }
  CHECK(bytes.at("empty.txt").empty());
  CHECK(bytes.at("one kib+=.bin").size() == 1024);
  CHECK(bytes.at("out/six.bin").size() == 6291456);  // one PUT, streamed
  CHECK_THAT(s3.head("ci/app/1/make/out/six.bin")->etag, !Catch::Contains("-"));
  CHECK(bytes.at("out/seven \xc3\xa9.bin").size() == 7340032);  // 5 MiB parts
  CHECK_THAT(s3.head("ci/app/1/make/out/seven \xc3\xa9.bin")->etag, Catch::EndsWith("-2\""));
  CHECK(bytes.at("out/twenty.bin").size() == 20971520);
  CHECK_THAT(s3.head("ci/app/1/make/out/twenty.bin")->etag, Catch::EndsWith("-4\""));
  // Nothing half-written: only the five objects, no multipart upload left open.
  auto listed = s3.list("ci/app/1/make/");
  REQUIRE(listed);
  CHECK(listed->size() == 5);
  CHECK(s3.list_uploads("")->empty());

  // The finished run's console, as one object beside its artifacts.
  REQUIRE(wait_until([&] { return run_detail(up).contains("console_object"); }, 60s));
  CHECK(run_detail(up)["console_object"] == "ci/app/1/make.console.log");
  auto console = up.api("GET", "/v1/projects/app/builds/1/runs/make/console");
  REQUIRE(console.status == 200);
  CHECK(fetch(s3, "ci/app/1/make.console.log") == console.body);
  CHECK(console.body.size() > 0);

  // An upload its sender may not make stores nothing, and leaves no parts,
  // whether it went as parts or as one streamed PUT.
  for (std::size_t size : {20u << 20, 6u << 20}) {
    std::string intruder(size, 'x');
    auto refused = up.api("PUT", "/v1/runs/app/1/make/artifacts/intruder.bin", intruder,
                          {{"Content-Type", "application/octet-stream"}}, "not-a-token");
    CHECK(refused.status == 401);
  }
  CHECK(wait_until([&] { return s3.list_uploads("")->empty(); }, 30s));
  CHECK(s3.list("ci/app/1/make/")->size() == 5);

  // Redirect mode: a presigned URL that serves the object, Range too.
  std::string base = "/v1/projects/app/builds/1/runs/make/artifacts/";
  auto r = up.api("GET", base + encoded("out/seven \xc3\xa9.bin"));
  REQUIRE(r.status == 302);
  auto location = r.headers.at("location");
  CHECK_THAT(location, Catch::StartsWith(config.endpoint + "/" + bucket + "/ci/app/1/make/out/"));
  CHECK_THAT(location, Catch::Contains("X-Amz-Signature="));
  auto target = location.substr(config.endpoint.size());
  auto port = static_cast<std::uint16_t>(std::stoi(config.endpoint.substr(config.endpoint.rfind(':') + 1)));
  auto whole = http_request("127.0.0.1", port, "GET", target);
  CHECK(whole.status == 200);
  CHECK((whole.body == bytes.at("out/seven \xc3\xa9.bin")));
  auto part = http_request("127.0.0.1", port, "GET", target, "", {{"Range", "bytes=100-199"}});
  CHECK(part.status == 206);
  CHECK((part.body == bytes.at("out/seven \xc3\xa9.bin").substr(100, 100)));

  // Proxy mode (for clients that cannot reach S3): the gateway sends the bytes.
  up.extra_args.insert(up.extra_args.end(), {"--s3-downloads", "proxy"});
  up.restart([] { return true; });
  auto proxied = up.api("GET", base + encoded("one kib+=.bin"));
  CHECK(proxied.status == 200);
  CHECK((proxied.body == bytes.at("one kib+=.bin")));
  auto big = up.api("GET", base + encoded("out/seven \xc3\xa9.bin"));
  CHECK(big.status == 200);
  CHECK((big.body == bytes.at("out/seven \xc3\xa9.bin")));
  auto ranged = up.api("GET", base + encoded("out/seven \xc3\xa9.bin"), "", {{"Range", "bytes=7340000-"}});
  CHECK(ranged.status == 206);
  CHECK(ranged.headers.at("content-range") == "bytes 7340000-7340031/7340032");
  CHECK((ranged.body == bytes.at("out/seven \xc3\xa9.bin").substr(7340000)));
  CHECK(up.api("GET", base + encoded("empty.txt")).body.empty());
  CHECK(up.api("GET", base + "nope.bin").status == 404);
}

TEST_CASE("a run waits for S3 to store its artifacts and fails with the storage error when it "
          "cannot", "[s3][e2e]") {
  kiln_bucket kb;
  auto& [bucket, config, s3] = kb;
  // The store's settings from a config file, as an operator keeps them.
  temp_dir dir{"kiln-s3-config"};
  std::ofstream{dir / "kiln.yaml"} << "executor: host\nartifacts: s3://" << bucket
                                    << "/ci\ns3-endpoint: " << config.endpoint
                                    << "\nartifact-retry-for: 15\n";
  kiln_up up{{"--workers", "1", "--config", (dir / "kiln.yaml").string()}};
  REQUIRE(up.api("PUT", "/v1/projects/app",
                 make_project("", "    echo built\n    head -c 1024 /dev/urandom > \"$ARCHIVE/lib.a\"\n"),
                 {{"Content-Type", "application/yaml"}})
            .status / 100 == 2);
  auto status_of = [&](int build) {
    auto r = up.api("GET", "/v1/projects/app/builds/" + std::to_string(build) + "/runs/make");
    return json::parse(r.body);
  };

  // S3 loses the bucket after kiln checked it: the upload fails, the worker
  // retries, and the run is not reported while it does.
  REQUIRE(s3.delete_bucket());
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  REQUIRE(wait_until([&] {
    return up.get("/metrics").body.find(
             R"(route="/v1/runs/{project}/{build}/{run}/artifacts/{path*}",status="502")")
           != std::string::npos;
  }, 60s));
  CHECK(status_of(1)["status"] == "RUNNING");
  // S3 comes back within the retry window: the run passes, its artifact stored.
  REQUIRE(s3.create_bucket());
  json run;
  REQUIRE(wait_until([&] {
    run = status_of(1);
    return run["status"] != "RUNNING";
  }, 60s));
  INFO(run.dump(2));
  CHECK(run["status"] == "PASSED");
  REQUIRE(run["artifacts"].size() == 1);
  CHECK(fetch(s3, "ci/app/1/make/lib.a").size() == 1024);

  // S3 stays away longer than --artifact-retry-for: the run FAILS, and its
  // console says which artifact and why.
  REQUIRE(wait_until([&] { return status_of(1).contains("console_object"); }, 60s));
  auto left = s3.list("");
  REQUIRE(left);
  for (auto& object : *left)
    REQUIRE(s3.remove(object.key));
  REQUIRE(s3.delete_bucket());
  REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
  REQUIRE(wait_until([&] {
    run = status_of(2);
    return run.contains("status") && run["status"] != "QUEUED" && run["status"] != "RUNNING";
  }, 120s));
  INFO(run.dump(2));
  CHECK(run["status"] == "FAILED");
  CHECK_THAT(run["message"].get<std::string>(),
             Catch::Contains("artifact lib.a was not stored after 15 s") && Catch::Contains("NoSuchBucket"));
  auto console = up.api("GET", "/v1/projects/app/builds/2/runs/make/console").body;
  CHECK_THAT(console, Catch::Contains("\nbuilt\n")
                        && Catch::EndsWith("== kiln: FAILED (exit code 0): artifact lib.a was not stored after 15 s of "
                                           "retries: HTTP 502 storage_unavailable: artifact 'lib.a' "
                                           "could not be stored: PUT ci/app/2/make/lib.a: HTTP 404 "
                                           "NoSuchBucket\n")
                        && !Catch::Contains("PASSED")
                        && Catch::Contains("NoSuchBucket"));
  CHECK(run["artifacts"].empty());
  REQUIRE(s3.create_bucket());  // so the bucket can be cleaned like the others
}

TEST_CASE("kiln up refuses to start with an S3 store it cannot use", "[s3][e2e]") {
  auto bucket = fresh_bucket_name();
  storage::s3_client s3{s3_test_config(bucket)};
  REQUIRE(s3.create_bucket());
  temp_dir dir{"kiln-s3-up"};
  auto start = [&](const std::string& secret, const std::string& which) {
    ::setenv("AWS_ACCESS_KEY_ID", s3_access_key, 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
    child_process p{{{KILN_BINARY, "up", "--data", (dir / "data").string(), "--listen",
                      "127.0.0.1:0", "--workers", "0", "--artifacts", "s3://" + which,
                      "--s3-endpoint", s3_endpoint()},
                     true}};
    auto code = p.wait(60s);
    REQUIRE(code);
    while (p.read_line(1s)) {
    }
    return std::pair{*code, p.transcript()};
  };
  auto [code, out] = start("wrong-secret", bucket);
  INFO(out);
  CHECK(code == 1);
  CHECK_THAT(out, Catch::Contains("s3://" + bucket) && Catch::Contains("is not usable")
                    && Catch::Contains("SignatureDoesNotMatch"));
  CHECK_THAT(out, !Catch::Contains("wrong-secret"));  // never logged
  auto [code2, out2] = start(s3_secret_key, "no-such-bucket-" + bucket);
  INFO(out2);
  CHECK(code2 == 1);
  CHECK_THAT(out2, Catch::Contains("NoSuchBucket"));
}

TEST_CASE("retention deletes the artifacts it should from S3 and nothing else", "[s3][e2e]") {
  kiln_bucket kb;
  auto& [bucket, config, s3] = kb;
  kiln_up up{{"--workers", "1", "--executor", "host", "--artifacts", "s3://" + bucket,
              "--s3-endpoint", config.endpoint, "--retention-interval", "1"}};
  auto yaml = make_project("retention:\n  keep-builds: 1\n",
                           "    echo \"build $H_BUILD\" > \"$ARCHIVE/report.txt\"\n");
  REQUIRE(up.api("PUT", "/v1/projects/app", yaml, {{"Content-Type", "application/yaml"}}).status / 100 == 2);
  auto build = [&](int n) {
    REQUIRE(up.api("POST", "/v1/projects/app/builds", R"({"trigger":"ci"})").status == 201);
    auto target = "/v1/projects/app/builds/" + std::to_string(n);
    REQUIRE(wait_until([&] { return json::parse(up.api("GET", target).body)["status"] == "PASSED"; }, 120s));
  };
  auto run_of = [&](int n) {
    return json::parse(up.api("GET", "/v1/projects/app/builds/" + std::to_string(n) + "/runs/make").body);
  };
  build(1);
  auto pinned = up.api("POST", "/v1/projects/app/builds/1/pin", R"({"name":"v1.0","reason":"release"})");
  INFO(pinned.body);
  REQUIRE(pinned.status == 200);
  build(2);
  build(3);
  // Build 2 is neither the newest nor pinned: its artifacts go.
  REQUIRE(wait_until([&] { return run_of(2)["artifacts_expired"] == true; }, 60s));
  auto listing = run_of(2)["artifacts"];
  REQUIRE(listing.size() == 1);
  CHECK(listing[0]["expired"] == true);
  auto gone = up.api("GET", "/v1/projects/app/builds/2/runs/make/artifacts/report.txt");
  CHECK(gone.status == 410);
  CHECK_THAT(gone.body, Catch::Contains("retention"));
  CHECK(json::parse(up.api("GET", "/v1/projects/app/builds/2").body)["status"] == "PASSED");

  // In the bucket: builds 1 (pinned) and 3 (newest), and nothing of build 2.
  auto listed = s3.list("");
  REQUIRE(listed);
  std::set<std::string> keys;
  for (auto& o : *listed)
    if (!o.key.ends_with(".console.log"))  // consoles are history, not artifacts
      keys.insert(o.key);
  CHECK(keys == std::set<std::string>{"app/1/make/report.txt", "app/3/make/report.txt"});
  CHECK(fetch(s3, "app/1/make/report.txt") == "build 1\n");
  CHECK(run_of(1)["artifacts_expired"] == false);
  CHECK(run_of(3)["artifacts_expired"] == false);
  auto b1 = json::parse(up.api("GET", "/v1/projects/app/builds/1").body);
  CHECK(b1["pinned"] == true);
  CHECK(b1["promoted_as"] == "v1.0");
}
