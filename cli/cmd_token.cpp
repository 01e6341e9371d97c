// `kiln token create|list|revoke`: API tokens over HTTP (POST/GET/DELETE
// /v1/tokens), so it works against any gateway of a running server; an
// admin token is needed.
//   create --scope read|trigger|admin [--project P] [--label L] [--json]
//          prints the new token alone on stdout (it is shown only once)
//   list   one line per token: id scope project label
//   revoke ID
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/server_args.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace kiln::cli {

namespace {

using nlohmann::json;

// The answer's JSON when it is a 2xx, else prints the error and gives null.
// A token limited to no project applies to all of them.
std::string project_of(const json& t) {
  auto p = t.value("project", std::string{});
  return p.empty() ? "*" : p;
}

json answer(const result<client::http_response>& r, int ok_status) {
  if (!r) {
    std::fprintf(stderr, "kiln token: %s\n", r.error().message.c_str());
    return nullptr;
  }
  if (r->status != ok_status) {
    auto e = client::api_error(*r);
    std::fprintf(stderr, "kiln token: %s (%s)\n", e.message.c_str(), e.code.c_str());
    return nullptr;
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "kiln token: the server answered something other than JSON\n");
    return nullptr;
  }
  return j;
}

int create(const args& a, client::api_client& api) {
  auto scope = a.get("scope");
  if (!scope)
    throw usage_error("--scope read|trigger|admin is required");
  json req{{"scope", *scope}};
  if (auto p = a.get("project"))
    req["project"] = *p;
  if (auto l = a.get("label"))
    req["label"] = *l;
  auto j = answer(api.request("POST", "/v1/tokens", req.dump()), 201);
  if (j.is_null())
    return 1;
  if (a.has("json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s\n", j.value("token", "").c_str());
  std::fprintf(stderr, "id=%s scope=%s project=%s (the token is not shown again)\n",
               j.value("id", "").c_str(), j.value("scope", "").c_str(),
               project_of(j).c_str());
  return 0;
}

int list(const args& a, client::api_client& api) {
  auto j = answer(api.request("GET", "/v1/tokens"), 200);
  if (!j.is_array())
    return 1;
  for (auto& t : j) {
    if (a.has("json")) {
      std::printf("%s\n", t.dump().c_str());
      continue;
    }
    std::printf("%s\t%s\t%s\t%s\n", t.value("id", "").c_str(), t.value("scope", "").c_str(),
                project_of(t).c_str(), t.value("label", "").c_str());
  }
  return 0;
}

int revoke(const args& a, client::api_client& api) {
  if (a.positionals().size() != 2)
    throw usage_error("usage: kiln token revoke ID");
  auto j = answer(api.request("DELETE", "/v1/tokens/" + a.positionals()[1]), 200);
  return j.is_null() ? 1 : 0;
}

} // namespace

int cmd_token(int argc, char** argv) {
  args a{argc, argv, 2, {"json"}};
  auto known = server_options;
  known.insert({"scope", "project", "label", "json"});
  a.allow_only(known);
  if (a.positionals().empty())
    throw usage_error("usage: kiln token create|list|revoke [--server URL] [--token-file F]");
  client::api_client api{server_from(a)};
  if (api.options().token.empty())
    throw usage_error("an admin token is needed: --token-file FILE or KILN_TOKEN");
  const auto& verb = a.positionals()[0];
  if (verb == "create")
    return create(a, api);
  if (verb == "list")
    return list(a, api);
  if (verb == "revoke")
    return revoke(a, api);
  throw usage_error("unknown verb '" + verb + "'; known: create, list, revoke");
}

} // namespace kiln::cli
