#include "gateway/core_client.hpp"

#include "events/subjects.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

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

using clock_type = std::chrono::steady_clock;

// What outlives the client: the bus's late answers may still come.
struct core_client::shared {
  bus::bus& bus;
  std::chrono::milliseconds timeout;

  // Retries waiting for their time; f(false) when the client closes first.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::multimap<clock_type::time_point, std::function<void(bool run)>> due;
  std::thread timer;

  shared(bus::bus& b, std::chrono::milliseconds t) : bus(b), timeout(t) {}

  void later(clock_type::time_point at, std::function<void(bool run)> f) {
    {
      std::lock_guard lock{mu};
      if (!stopping) {
        if (!timer.joinable())  // most gateways never retry
          timer = std::thread([this] { run_timer(); });
        due.emplace(at, std::move(f));
        cv.notify_one();
        return;
      }
    }
    f(false);
  }

  void run_timer() {
    std::unique_lock lock{mu};
    while (!stopping) {
      if (due.empty()) {
        cv.wait(lock);
        continue;
      }
      auto first = due.begin();
      if (clock_type::now() < first->first) {
        cv.wait_until(lock, first->first);
        continue;
      }
      auto f = std::move(first->second);
      due.erase(first);
      lock.unlock();
      f(true);
      lock.lock();
    }
  }

  void stop() {
    std::multimap<clock_type::time_point, std::function<void(bool)>> left;
    {
      std::lock_guard lock{mu};
      stopping = true;
      left.swap(due);
    }
    cv.notify_all();
    if (timer.joinable())
      timer.join();
    for (auto& [at, f] : left)
      f(false);
  }
};

namespace {

struct request_try {
  std::string subject, data;
  bool repeatable;
  clock_type::time_point deadline;
  std::chrono::milliseconds backoff{50};
  core_callback done;
};

error no_core(const std::string& code) {
  return error{"unavailable", "no core answered (" + code + "); retry shortly"};
}

void answer(core_callback& done, const std::string& reply) {
  auto [head, bytes] = subjects::unframe(reply);
  auto j = json::parse(head, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return done(error{"internal", "the core's reply is not JSON"});
  if (!j.value("ok", false))
    return done(error{j.value("error", std::string{"internal"}), j.value("message", std::string{})});
  core_answer a;
  a.seq = j.value("seq", std::uint64_t{0});
  a.payload = bytes;
  if (auto it = j.find("result"); it != j.end())
    a.set_result(std::move(*it));  // a console read: bytes follow
  done(std::move(a));
}

void send_try(const std::shared_ptr<core_client::shared>& s, const std::shared_ptr<request_try>& t) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t->deadline - clock_type::now());
  if (left.count() <= 0)
    return t->done(no_core("timeout"));
  auto wait = t->repeatable ? std::min(left, s->timeout / 2) : left;
  s->bus.request(t->subject, t->data, wait, [s, t](result<std::string> r) {
    if (r)
      return answer(t->done, *r);
    auto& code = r.error().code;
    auto now = clock_type::now();
    if (code == "no_responders" && now + t->backoff < t->deadline) {
      auto at = now + t->backoff;
      t->backoff = std::min(t->backoff * 2, std::chrono::milliseconds{1000});
      return s->later(at, [s, t](bool run) {
        if (!run)
          return t->done(error{"unavailable", "the gateway is closing"});
        send_try(s, t);
      });
    }
    if (code == "timeout" && t->repeatable && now < t->deadline)
      return send_try(s, t);
    if (code == "no_responders" || code == "timeout")
      return t->done(no_core(code));
    t->done(r.error());
  });
}

} // namespace

core_client::core_client(bus::bus& b, std::chrono::milliseconds timeout)
    : s_(std::make_shared<shared>(b, timeout)) {}

core_client::~core_client() { s_->stop(); }

bus::bus& core_client::bus() { return s_->bus; }

void core_client::command(std::string_view verb, json body, const caller& who, core_callback done,
                          std::string_view bytes) {
  auto head = envelope(std::move(body), who);
  send("kiln.cmd." + std::string{verb},
       bytes.empty() ? std::move(head) : subjects::frame(head, bytes), !who.command_id.empty(),
       std::move(done));
}

void core_client::query(std::string_view verb, json body, const caller& who, core_callback done) {
  send("kiln.qry." + std::string{verb}, envelope(std::move(body), who), true, std::move(done));
}

void core_client::send(std::string subject, std::string data, bool repeatable, core_callback done) {
  send_try(s_, std::make_shared<request_try>(request_try{std::move(subject), std::move(data),
                                                         repeatable, clock_type::now() + s_->timeout,
                                                         std::chrono::milliseconds{50},
                                                         std::move(done)}));
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
