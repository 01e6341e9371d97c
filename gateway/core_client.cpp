#include "gateway/core_client.hpp"

#include "events/subjects.hpp"

#include <map>

namespace kiln::gateway {

using json = nlohmann::json;

namespace {

std::string envelope(json body, const caller& who) {
  return json{{"principal", who.principal},
              {"command_id", who.command_id},
              {"min_seq", who.min_seq},
              {"body", std::move(body)}}
    .dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

void core_client::command(std::string_view verb, json body, const caller& who, core_callback done,
                          std::string_view bytes) {
  auto head = envelope(std::move(body), who);
  send("kiln.cmd." + std::string{verb},
       bytes.empty() ? std::move(head) : subjects::frame(head, bytes), std::move(done));
}

void core_client::query(std::string_view verb, json body, const caller& who, core_callback done) {
  send("kiln.qry." + std::string{verb}, envelope(std::move(body), who), std::move(done));
}

void core_client::send(std::string subject, std::string data, core_callback done) {
  bus_.request(std::move(subject), std::move(data), timeout_,
               [done = std::move(done)](result<std::string> r) {
                 if (!r) {
                   if (r.error().code == "no_responders" || r.error().code == "timeout")
                     return done(error{"unavailable", "no core answered (" + r.error().code
                                                        + "); retry shortly"});
                   return done(r.error());
                 }
                 auto [head, bytes] = subjects::unframe(*r);
                 auto j = json::parse(head, nullptr, false);
                 if (j.is_discarded() || !j.is_object())
                   return done(error{"internal", "the core's reply is not JSON"});
                 if (!j.value("ok", false))
                   return done(error{j.value("error", std::string{"internal"}),
                                     j.value("message", std::string{})});
                 core_answer a;
                 a.seq = j.value("seq", std::uint64_t{0});
                 a.payload = bytes;
                 if (auto it = j.find("result"); it != j.end())
                   a.set_result(std::move(*it));  // a console read: bytes follow
                 done(std::move(a));
               });
}

const json& core_answer::result() const {
  if (!parsed_) {
    auto j = json::parse(payload, nullptr, false);
    parsed_ = j.is_discarded() ? json::object() : std::move(j);
  }
  return *parsed_;
}

int http_status(std::string_view code) {
  static const std::map<std::string_view, int> table{
    {"bad_request", 400},       {"invalid_argument", 400},   {"unknown_trigger", 400},
    {"unknown_version", 400},   {"malformed", 400},          {"gap", 409},
    {"unauthorized", 401},      {"forbidden", 403},          {"not_enlisted", 403},          {"not_assigned_to_you", 403},
    {"not_found", 404},         {"method_not_allowed", 405}, {"already_exists", 409},
    {"conflict", 409},          {"duplicate_run", 409},      {"finished", 409},
    {"illegal_transition", 409}, {"too_large", 413},         {"unsupported_media_type", 415},
    {"invalid_definition", 422}, {"too_many", 429},          {"not_implemented", 501},
    {"unavailable", 503},       {"draining", 503},           {"timeout", 504},
  };
  auto it = table.find(code);
  return it == table.end() ? 500 : it->second;
}

} // namespace kiln::gateway
