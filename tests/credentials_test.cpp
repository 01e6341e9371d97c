// Tokens: who holds a bearer token, decided from the read model alone.
#include "actors/credentials.hpp"
#include "actors/token_aggregate.hpp"
#include "model_fixture.hpp"

#include <catch2/catch.hpp>

using namespace kiln;
using namespace kiln::domain;

namespace {

struct token_world : test::model_builder {
  std::string issue(const std::string& id, const std::string& scope, const std::string& project = {}) {
    auto t = make_api_token(id, random_secret());
    add(streams::token(id), {token_issued{id, "", scope, project, token_hash(t)}});
    return t;
  }
  std::string register_worker(const std::string& name, bool enlisted) {
    auto t = make_worker_token(name, random_secret());
    std::vector<event> events{worker_registered{name, {"linux"}, 1, "{}", token_hash(t)}};
    if (enlisted)
      events.push_back(worker_enlisted{});
    add(streams::worker(name), events);
    return t;
  }
};

} // namespace

TEST_CASE("an API token grants its scope and project, and nothing once revoked") {
  token_world w;
  auto t = w.issue("ci-bot", "trigger", "app");
  auto g = authenticate(w.model, t);
  REQUIRE(g);
  CHECK(g->holder == grant::kind::api);
  CHECK(g->id == "ci-bot");
  CHECK(g->scope == "trigger");
  CHECK(g->project == "app");

  w.add(streams::token("ci-bot"), {token_revoked{"leaked"}});
  auto after = authenticate(w.model, t);
  REQUIRE_FALSE(after);
  CHECK(after.error().code == "unauthorized");
}

TEST_CASE("a wrong, malformed or unknown token is unauthorized") {
  token_world w;
  auto t = w.issue("admin", "admin");
  for (auto bad : {t + "0", t.substr(0, t.size() - 1), std::string{"kt.admin."},
                   std::string{"kt.nobody.abcd"}, std::string{""}, std::string{"Bearer x"},
                   std::string{"kx.admin.abcd"}}) {
    auto g = authenticate(w.model, bad);
    REQUIRE_FALSE(g);
    CHECK(g.error().code == "unauthorized");
  }
}

TEST_CASE("a worker's key is forbidden until the worker is enlisted") {
  token_world w;
  auto pending = w.register_worker("lab-1", false);
  auto g = authenticate(w.model, pending);
  REQUIRE_FALSE(g);
  CHECK(g.error().code == "not_enlisted");

  w.add(streams::worker("lab-1"), {worker_enlisted{}});
  auto ok = authenticate(w.model, pending);
  REQUIRE(ok);
  CHECK(ok->holder == grant::kind::worker);
  CHECK(ok->id == "lab-1");

  w.add(streams::worker("lab-1"), {worker_deleted{"gone"}});
  CHECK(authenticate(w.model, pending).error().code == "unauthorized");
}

TEST_CASE("a token survives the read model's snapshot") {
  token_world w;
  auto t = w.issue("reader", "read");
  auto back = read_model::decode(w.model.encode());
  REQUIRE(back);
  auto g = authenticate(*back, t);
  REQUIRE(g);
  CHECK(g->scope == "read");
}

TEST_CASE("the token aggregate issues, re-issues with a new hash, and revokes") {
  token::state s;
  auto refused = token::decide(s, token::issue_token{"x", "", "root", "", std::string(64, 'a')});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "invalid_argument");
  CHECK(token::decide(s, token::revoke_token{"r"}).error().code == "not_found");

  auto issued = token::decide(s, token::issue_token{"x", "", "read", "", std::string(64, 'a')});
  REQUIRE(issued);
  REQUIRE(issued->size() == 1);
  token::apply(s, issued->front());
  CHECK(s.live());
  // Same again changes nothing; another hash replaces it.
  CHECK(token::decide(s, token::issue_token{"x", "", "read", "", std::string(64, 'a')})->empty());
  CHECK(token::decide(s, token::issue_token{"x", "", "read", "", std::string(64, 'b')})->size() == 1);

  auto revoked = token::decide(s, token::revoke_token{"r"});
  REQUIRE(revoked);
  token::apply(s, revoked->front());
  CHECK_FALSE(s.live());
}
