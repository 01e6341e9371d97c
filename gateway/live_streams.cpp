#include "gateway/live_streams.hpp"

#include "events/subjects.hpp"
#include "events/streams.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <optional>

namespace kiln::gateway {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t console_page = 256 * 1024;

std::string sse(std::string_view event, std::string_view id, std::string_view data) {
  std::string out;
  out.reserve(data.size() + 64);
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  out += "event: ";
  out += event;
  out += "\ndata: ";
  out += data;
  out += "\n\n";
  return out;
}

// How many leading bytes of `s` end on a whole UTF-8 character (SSE data is
// JSON text, so a character cut by a chunk boundary waits for its rest).
std::size_t whole_utf8(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80)
      continue;  // a continuation byte: look further back
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len > back ? n - back : n;
  }
  return n;
}

// What both streams share: the output, its limits, listener ids, ending.
class stream_base : public live_stream, public std::enable_shared_from_this<stream_base> {
 public:
  stream_base(live_hub& hub, core_client& core, responder respond, http_response head,
              stream_limits limits)
    : hub_(hub), core_(core), respond_(std::move(respond)), head_(std::move(head)),
      limits_(limits) {}

  ~stream_base() override { unlisten(); }

  bool ended() const override {
    std::lock_guard lock{mu_};
    return ended_;
  }

  void drain() override {
    end_with(sse_mode() ? sse("reconnect", "", reconnect_data("the server is shutting down"))
                        : std::string{});
  }

 protected:
  virtual bool sse_mode() const = 0;
  virtual std::string reconnect_data(std::string_view reason) const = 0;

  void listen(std::vector<std::uint64_t> ids) {
    std::lock_guard lock{mu_};
    ids_ = std::move(ids);
  }

  void unlisten() {
    std::vector<std::uint64_t> ids;
    {
      std::lock_guard lock{mu_};
      ids.swap(ids_);
    }
    for (auto id : ids)
      hub_.remove(id);
  }

  // The first answer decides: an error is a plain JSON error response; else
  // the stream begins. Called with mu_ held.
  bool opened_locked() { return out_ != nullptr; }
  void open_locked() {
    if (out_)
      return;
    out_ = respond_.stream(std::move(head_));
    std::weak_ptr<stream_base> weak = shared_from_this();
    out_->on_close([weak] {
      if (auto self = weak.lock()) {
        {
          std::lock_guard lock{self->mu_};
          self->ended_ = true;
        }
        self->unlisten();
      }
    });
  }
  void refuse(const error& e) {
    {
      std::lock_guard lock{mu_};
      if (ended_)
        return;
      ended_ = true;
      respond_(json_error(http_status(e.code), e.code, e.message));
    }
    unlisten();
  }

  // Called with mu_ held. False when the client is too far behind: then the
  // stream is cut off (the caller stops).
  bool emit_locked(std::string bytes) {
    if (ended_)
      return false;
    open_locked();
    if (out_->pending() > limits_.buffer_bytes) {
      cutoff_locked();
      return false;
    }
    last_write_ = clock_type::now();
    if (!out_->write(std::move(bytes))) {
      ended_ = true;
      return false;
    }
    return true;
  }

  void cutoff_locked() {
    spdlog::info("gateway stream=cut_off reason=slow_reader pending_bytes={}", out_->pending());
    // The final message goes past the limit on purpose: it is small, and
    // the client needs it to know to resume.
    if (sse_mode())
      out_->write(sse("reconnect", "", reconnect_data("too far behind; resume from the last id")));
    finish_locked();
  }

  void finish_locked() {
    if (ended_)
      return;
    open_locked();
    ended_ = true;
    out_->finish();
  }

  void end_with(std::string last) {
    {
      std::lock_guard lock{mu_};
      if (ended_)
        return;
      open_locked();
      if (!last.empty())
        out_->write(std::move(last));
      finish_locked();
    }
    unlisten();
  }

  void heartbeat() {
    bool stop = false;
    {
      std::lock_guard lock{mu_};
      if (!out_) {
        // not started yet: nothing to keep alive
      } else if (ended_ || out_->closed()) {
        ended_ = true;
        stop = true;
      } else if (out_->pending() > limits_.buffer_bytes) {
        cutoff_locked();
        stop = true;
      } else if (sse_mode() && clock_type::now() - last_write_ >= limits_.heartbeat) {
        emit_locked(": keepalive\n\n");
      }
    }
    if (stop)
      unlisten();
  }

  // A read from the core may start: returns where it reads from, or
  // nothing when one is out already (it is marked to go again) or the
  // stream has ended, or, with `pause_when_full`, the client is behind.
  std::optional<std::uint64_t> claim_read(bool pause_when_full) {
    std::lock_guard lock{mu_};
    if (ended_)
      return std::nullopt;
    if (fetching_) {
      dirty_ = true;
      return std::nullopt;
    }
    if (pause_when_full && out_ && out_->pending() > limits_.buffer_bytes / 2)
      return std::nullopt;  // paused until the client reads (or the tick cuts it off)
    fetching_ = true;
    dirty_ = false;
    return next_;
  }

  live_hub& hub_;
  core_client& core_;
  responder respond_;
  http_response head_;
  std::shared_ptr<body_stream> out_;
  stream_limits limits_;
  mutable std::mutex mu_;
  bool ended_ = false;
  clock_type::time_point last_write_ = clock_type::now();
  std::vector<std::uint64_t> ids_;
  std::uint64_t next_ = 0;  // where the next read from the core starts
  bool fetching_ = false;   // a read is out
  bool dirty_ = false;      // something happened while it was: read again
};

// ---- console ----

class console_follower final : public stream_base {
 public:
  console_follower(live_hub& hub, core_client& core, responder respond, http_response head,
                   console_follow_request req, stream_limits limits)
    : stream_base(hub, core, std::move(respond), std::move(head), limits), req_(std::move(req)),
      run_path_(req_.project + "/" + std::to_string(req_.build) + "/" + req_.run),
      completed_(subjects::event_path(streams::run(req_.project, req_.build, req_.run),
                                      "RunCompleted")),
      sent_(req_.offset) {
    next_ = req_.offset;
  }

  void start() override {
    auto self = std::static_pointer_cast<console_follower>(shared_from_this());
    std::weak_ptr<console_follower> weak = self;
    std::vector<std::uint64_t> ids;
    if (req_.follow) {
      ids.push_back(hub_.on_console(run_path_, [weak](std::uint64_t offset, std::string_view bytes) {
        if (auto s = weak.lock())
          s->on_chunk(offset, bytes);
      }));
      ids.push_back(hub_.on_events({"RunCompleted"}, [weak](const heard_event& e) {
        if (auto s = weak.lock(); s && e.path == s->completed_) {
          // The answering core must hold the run's end, or the follower
          // would wait for an event that has passed.
          raise_to(s->min_seq_, e.seq);
          s->on_completed(e.commit);
        }
      }));
    }
    ids.push_back(hub_.on_tick([weak] {
      if (auto s = weak.lock()) {
        s->heartbeat();
        s->recheck();
      }
    }));
    listen(std::move(ids));
    // An end heard before the listener was in: the first read comes from a
    // core holding it.
    raise_to(min_seq_, hub_.last_seq());
    fetch();
  }

 private:
  bool sse_mode() const override { return req_.sse; }
  std::string reconnect_data(std::string_view reason) const override {
    return json{{"reason", reason}, {"last_id", sent_}}.dump();
  }

  // A follow that heard nothing for a while reads again: an end the bus
  // never brought (a reconnect, a subscription still spreading through the
  // NATS cluster) cannot leave it open for ever.
  void recheck() {
    if (req_.follow && clock_type::now() - last_heard_.load() >= limits_.recheck)
      fetch();
  }

  // Reads from `next_` (what the client has been sent, plus held bytes).
  void fetch() {
    auto claimed = claim_read(false);
    if (!claimed)
      return;
    last_heard_ = clock_type::now();
    auto from = *claimed;
    std::weak_ptr<console_follower> weak =
      std::static_pointer_cast<console_follower>(shared_from_this());
    auto who = req_.who;
    who.min_seq = std::max<std::uint64_t>(who.min_seq, min_seq_);
    core_.query("read_console",
                {{"project", req_.project}, {"build", req_.build}, {"run", req_.run},
                 {"offset", from}, {"max", console_page}},
                who, [weak, from](result<core_answer> r) {
                  if (auto s = weak.lock())
                    s->on_read(from, std::move(r));
                });
  }

  // The run ended. When its RunCompleted names the console's size and the
  // live chunks brought exactly that much, the follow is over without
  // asking a core again; otherwise a read finds what is missing.
  void on_completed(const json& commit) {
    auto completed = event_data(commit, "RunCompleted");
    // 0: a commit from before kiln recorded the size, or an empty console.
    auto size = completed ? completed->value("console_size", std::uint64_t{0}) : 0;
    std::optional<std::string> last;
    {
      std::lock_guard lock{mu_};
      if (ended_)
        return;
      if (size > 0 && next_ == size && !fetching_ && !dirty_ && opened_locked())
        last = end_message_locked(completed->value("status", std::string{}), true);
    }
    if (!last)
      return fetch();
    end_with(std::move(*last));
  }

  // The SSE stream's last message: how the console ended.
  std::string end_message_locked(const std::string& status, bool finished) const {
    if (!req_.sse)
      return {};
    return sse("end", std::to_string(sent_),
               json{{"status", status}, {"size", next_}, {"finished", finished}}.dump());
  }

  void on_read(std::uint64_t from, result<core_answer> r) {
    bool again = false, done = false;
    std::string last;
    std::optional<error> failed;
    {
      std::lock_guard lock{mu_};
      fetching_ = false;
      if (ended_)
        return;
      if (!r && !opened_locked()) {
        failed = r.error();
      } else if (!r) {
        last = req_.sse ? sse("error", "", json{{"error", r.error().code},
                                                {"message", r.error().message}}.dump())
                        : std::string{};
        done = true;
      } else {
        open_locked();
        std::string_view bytes = r->payload;
        // Live chunks may have moved us on while the read was out.
        if (next_ > from)
          bytes.remove_prefix(std::min<std::uint64_t>(bytes.size(), next_ - from));
        if (!bytes.empty() && !send_locked(bytes))
          return;
        auto size = r->result().value("size", std::uint64_t{0});
        auto finished = r->result().value("finished", false);
        if (r->payload.size() >= console_page || dirty_ || next_ < size) {
          again = true;
        } else if (finished || !req_.follow) {
          done = true;
          last = end_message_locked(r->result().value("status", std::string{}), finished);
        }
      }
    }
    if (failed)
      return refuse(*failed);
    if (done)
      return end_with(std::move(last));
    if (again)
      fetch();
  }

  void on_chunk(std::uint64_t offset, std::string_view bytes) {
    bool gap = false;
    last_heard_ = clock_type::now();
    {
      std::lock_guard lock{mu_};
      if (ended_)
        return;
      if (fetching_ || !opened_locked()) {
        dirty_ = true;  // the read in flight, or the next one, covers it
        return;
      }
      if (offset > next_) {
        gap = true;
      } else if (offset + bytes.size() > next_) {
        bytes.remove_prefix(next_ - offset);
        send_locked(bytes);
      }
    }
    if (gap)
      fetch();
  }

  // Sends bytes that begin at next_.
  bool send_locked(std::string_view bytes) {
    next_ += bytes.size();
    if (!req_.sse) {
      sent_ = next_;
      return emit_locked(std::string{bytes});
    }
    carry_.append(bytes);
    auto whole = whole_utf8(carry_);
    if (whole == 0)
      return true;
    auto text = carry_.substr(0, whole);
    carry_.erase(0, whole);
    auto start = sent_;
    sent_ += text.size();
    return emit_locked(sse("console", std::to_string(sent_),
                           json{{"offset", start}, {"text", text}}
                             .dump(-1, ' ', false, json::error_handler_t::replace)));
  }

  console_follow_request req_;
  std::string run_path_;
  std::string completed_;
  // next_ counts the bytes taken from the core; sent_ those the client has
  // been sent (SSE holds back a cut character).
  std::uint64_t sent_;
  std::string carry_;
  // What the core that answers a read must hold: the newest commit heard
  // when the follow began, then the run's end.
  std::atomic<std::uint64_t> min_seq_{0};
  std::atomic<clock_type::time_point> last_heard_{clock_type::now()};
};

// ---- events ----

class event_feed final : public stream_base {
 public:
  event_feed(live_hub& hub, core_client& core, responder respond, http_response head,
             event_feed_request req, stream_limits limits)
    : stream_base(hub, core, std::move(respond), std::move(head), limits), req_(std::move(req)) {
    next_ = req_.after;
  }

  void start() override {
    std::weak_ptr<event_feed> weak = std::static_pointer_cast<event_feed>(shared_from_this());
    std::vector<std::uint64_t> ids;
    ids.push_back(hub_.on_event([weak](const heard_event&) {
      if (auto s = weak.lock())
        s->fetch();
    }));
    ids.push_back(hub_.on_tick([weak] {
      if (auto s = weak.lock()) {
        s->heartbeat();
        s->fetch();  // resumes a feed paused for a slow client
      }
    }));
    listen(std::move(ids));
    fetch();
  }

 private:
  bool sse_mode() const override { return true; }
  std::string reconnect_data(std::string_view reason) const override {
    return json{{"reason", reason}, {"last_id", next_}}.dump();
  }

  void fetch() {
    auto from = claim_read(true);
    if (!from)
      return;
    std::weak_ptr<event_feed> weak = std::static_pointer_cast<event_feed>(shared_from_this());
    core_.query("events", {{"after", *from}, {"filter", req_.filter}, {"limit", 200}}, req_.who,
                [weak](result<core_answer> r) {
                  if (auto s = weak.lock())
                    s->on_page(std::move(r));
                });
  }

  void on_page(result<core_answer> r) {
    bool again = false;
    std::string last;
    bool fail = false;
    std::optional<error> failed;
    {
      std::lock_guard lock{mu_};
      fetching_ = false;
      if (ended_)
        return;
      if (!r && !opened_locked()) {
        failed = r.error();
      } else if (!r) {
        fail = true;
        last = sse("error", "", json{{"error", r.error().code}, {"message", r.error().message},
                                     {"last_id", next_}}.dump());
      } else {
        // Tells the client at once that the stream is up.
        if (!opened_locked())
          emit_locked(": kiln events after " + std::to_string(next_) + "\n\n");
        static const json no_commits = json::array();
        const auto& page = r->result();
        auto found = page.find("commits");
        const json& commits = found != page.end() ? *found : no_commits;
        for (auto& c : commits) {
          auto seq = c.value("seq", std::uint64_t{0});
          if (seq <= next_)
            continue;
          next_ = seq;
          if (!emit_locked(sse("commit", std::to_string(seq), c.dump())))
            return;
        }
        auto scanned = r->result().value("scanned", next_);
        next_ = std::max(next_, scanned);
        again = dirty_ || next_ < r->result().value("head", std::uint64_t{0});
      }
    }
    if (failed)
      return refuse(*failed);
    if (fail)
      return end_with(std::move(last));
    if (again)
      fetch();
  }

  event_feed_request req_;
};

} // namespace

std::shared_ptr<live_stream> make_console_follower(live_hub& hub, core_client& core,
                                                   responder respond, http_response head,
                                                   console_follow_request req,
                                                   stream_limits limits) {
  return std::make_shared<console_follower>(hub, core, std::move(respond), std::move(head),
                                            std::move(req), limits);
}

std::shared_ptr<live_stream> make_event_feed(live_hub& hub, core_client& core, responder respond,
                                             http_response head, event_feed_request req,
                                             stream_limits limits) {
  return std::make_shared<event_feed>(hub, core, std::move(respond), std::move(head),
                                      std::move(req), limits);
}

} // namespace kiln::gateway
