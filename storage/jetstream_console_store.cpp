#include "storage/jetstream_console_store.hpp"

#include "events/subjects.hpp"
#include "storage/jetstream_link.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <future>

namespace kiln::storage {

struct jetstream_console_store::impl {
  console_store& local;
  jetstream_console_options o;
  std::unique_ptr<jetstream::link> link;
  std::unique_ptr<jetstream::ordered_copy> follower;
  jetstream::copy_progress progress;

  jetstream::recent_outcomes<result<console_append>> outcomes{4096};
  std::uint64_t saved_position = 0;

  impl(console_store& l, jetstream_console_options opts) : local(l), o(std::move(opts)) {}

  // Published, not yet acknowledged.
  struct pending_append {
    std::string run;
    console_callback done;
  };
  jetstream::pending_acks<pending_append> acks;

  // Every ack and failure of an append, on NATS's delivery thread.
  void answered(pending_append p, jsPubAck* ack, jsPubAckErr* failure) {
    if (!ack) {
      auto why = failure ? jetstream::status_text(failure->Err, failure->ErrCode)
                             + (failure->ErrText ? std::string{": "} + failure->ErrText : "")
                         : std::string{"no answer"};
      return p.done(error{"unavailable", "the cluster's console stream did not take the chunk: " + why});
    }
    // The chunk is the stream's message `seq`: its outcome is what this
    // core's copy makes of it, in the stream's order.
    auto seq = ack->Sequence;
    auto duplicate = ack->Duplicate;
    auto shared = std::make_shared<pending_append>(std::move(p));
    progress.when_done(seq, [this, shared, seq, duplicate](bool copied) {
      auto& done = shared->done;
      if (!copied)
        return done(error{"unavailable", "this core's console copy stopped before chunk "
                                           + std::to_string(seq)});
      if (duplicate) {
        // Taken before (a resend): the console as it is now.
        auto size = local.console_size(shared->run);
        if (!size)
          return done(size.error());
        return done(console_append{*size, *size, 0});
      }
      auto outcome = outcomes.get(seq);
      if (!outcome)
        return done(error{"unavailable", "chunk " + std::to_string(seq) + " was copied too long ago to tell"});
      done(std::move(*outcome));
    });
  }

  void close() {
    follower.reset();
    // A chunk not acknowledged may or may not be in the stream (a resend finds out).
    for (auto& p : jetstream::close_publishing(link, acks))
      p.done(error{"unavailable", "the console store closed before the chunk was acknowledged"});
    progress.stop(std::nullopt);
    save_position(progress.copied());
  }

  void copy(std::uint64_t seq, const std::string& data) {
    if (!progress.take(seq))
      return;
    auto [head, bytes] = subjects::unframe(data);
    auto j = nlohmann::json::parse(head, nullptr, false);
    result<console_append> r = error{"corrupt", "console chunk " + std::to_string(seq) + " has no header"};
    if (j.is_object() && j.contains("run"))
      r = local.append_console(j.value("run", std::string{}), j.value("offset", std::uint64_t{0}),
                               bytes);
    outcomes.put(seq, std::move(r));
    progress.done(seq);
    if (seq >= saved_position + 256)
      save_position(seq);
  }

  void save_position(std::uint64_t seq) {
    if (o.position_file.empty())
      return;
    auto tmp = o.position_file;
    tmp += ".tmp";
    if (std::ofstream out{tmp, std::ios::trunc}; out << seq << "\n")
      std::filesystem::rename(tmp, o.position_file);
    saved_position = seq;
  }

  std::uint64_t load_position() {
    std::uint64_t seq = 0;
    if (std::ifstream in{o.position_file}; in)
      in >> seq;
    return seq;
  }
};

result<std::unique_ptr<jetstream_console_store>> jetstream_console_store::open(
  console_store& local, jetstream_console_options o) {
  auto p = std::make_unique<impl>(local, std::move(o));
  auto& opts = p->o;
  auto l = jetstream::link::connect(opts.servers, opts.name, opts.ack_timeout,
                                    p->acks.handler());
  if (!l)
    return l.error();
  p->link = std::move(*l);
  p->acks.open([raw = p.get()](impl::pending_append a, natsMsg*, jsPubAck* ack, jsPubAckErr* failure) {
    raw->answered(std::move(a), ack, failure);
  });
  auto last = p->link->ensure_stream({opts.stream, std::string{subjects::console_copy_subjects},
                                      opts.replicas,
                                      std::chrono::duration_cast<std::chrono::seconds>(opts.max_age),
                                      false});
  if (!last)
    return last.error();
  // From where the copy was; chunks it held already change nothing.
  auto from = std::min(p->load_position(), *last);
  p->saved_position = from;
  p->progress.start_at(from);
  auto follower = jetstream::ordered_copy::start(
    *p->link, opts.stream, std::string{subjects::console_copy_subjects}, from,
    [raw = p.get()](std::uint64_t seq, std::string, std::string data) { raw->copy(seq, data); });
  if (!follower)
    return follower.error();
  p->follower = std::move(*follower);
  if (!p->progress.wait_for(*last, std::chrono::minutes{5}))
    return error{"io", "the console copy holds " + std::to_string(p->progress.copied()) + " of "
                         + std::to_string(*last) + " chunks after 5 minutes"};
  spdlog::info("console cluster=jetstream stream={} replicas={} copied={}", opts.stream,
               opts.replicas, *last);
  return std::unique_ptr<jetstream_console_store>{new jetstream_console_store{std::move(p)}};
}

jetstream_console_store::jetstream_console_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

jetstream_console_store::~jetstream_console_store() { impl_->close(); }

void jetstream_console_store::append_console_async(const std::string& run, std::uint64_t offset,
                                                   std::string_view bytes, console_callback done) {
  auto& p = *impl_;
  auto data = subjects::frame(nlohmann::json{{"run", run}, {"offset", offset}}.dump(), bytes);
  auto subject = subjects::console_copy_subject(run);
  auto id = run + "@" + std::to_string(offset) + "+" + std::to_string(bytes.size());
  natsMsg* msg = nullptr;
  if (auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
      s != NATS_OK)
    return done(error{"io", "cannot make a message: " + jetstream::status_text(s)});
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = p.o.ack_timeout.count();
  po.MsgId = id.c_str();
  auto key = msg;
  p.acks.add(key, impl::pending_append{run, std::move(done)});
  auto s = js_PublishMsgAsync(p.link->js(), &msg, &po);
  if (s == NATS_OK)
    return;
  natsMsg_Destroy(msg);
  if (auto unsent = p.acks.take(key))
    unsent->done(error{"unavailable", "the cluster's console stream did not take the chunk: "
                                        + jetstream::status_text(s)});
}

result<console_append> jetstream_console_store::append_console(const std::string& run,
                                                               std::uint64_t offset,
                                                               std::string_view bytes) {
  auto answer = std::make_shared<std::promise<result<console_append>>>();
  auto future = answer->get_future();
  append_console_async(run, offset, bytes,
                       [answer](result<console_append> r) { answer->set_value(std::move(r)); });
  // The ack has its own deadline; the copy, which follows it, gets as long.
  if (future.wait_for(2 * impl_->o.ack_timeout) != std::future_status::ready)
    return error{"unavailable", "this core's console copy did not take the chunk in time"};
  return future.get();
}

result<std::string> jetstream_console_store::read_console(const std::string& run, std::uint64_t offset,
                                                          std::size_t max) {
  return impl_->local.read_console(run, offset, max);
}

result<std::uint64_t> jetstream_console_store::console_size(const std::string& run) {
  return impl_->local.console_size(run);
}

} // namespace kiln::storage
