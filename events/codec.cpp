#include "events/codec.hpp"

#include "kiln_generated.h"

#include <algorithm>
#include <cstring>

namespace kiln::codec {

namespace fb = flatbuffers;
namespace s = kiln::schema;

std::string_view to_string(errc e) {
  switch (e) {
    case errc::malformed: return "malformed";
    case errc::unknown_event_type: return "unknown_event_type";
  }
  return "unknown";
}

namespace {

error make_error(errc e, std::string message) {
  return {std::string{to_string(e)}, std::move(message)};
}

// ---- encoding helpers ----

// Absent instead of empty: smaller records, and absent decodes to "".
fb::Offset<fb::String> str(fb::FlatBufferBuilder& b, const std::string& v) {
  return v.empty() ? 0 : b.CreateString(v);
}

fb::Offset<fb::Vector<fb::Offset<fb::String>>>
strs(fb::FlatBufferBuilder& b, const std::vector<std::string>& v) {
  if (v.empty())
    return 0;
  std::vector<fb::Offset<fb::String>> items;
  items.reserve(v.size());
  for (auto& x : v)
    items.push_back(b.CreateString(x));
  return b.CreateVector(items);
}

fb::Offset<fb::Vector<std::uint8_t>> bytes(fb::FlatBufferBuilder& b, const std::string& v) {
  if (v.empty())
    return 0;
  return b.CreateVector(reinterpret_cast<const std::uint8_t*>(v.data()), v.size());
}

s::Status to_schema(status x) { return static_cast<s::Status>(x); }

using body_ref = std::pair<s::EventBody, fb::Offset<void>>;

body_ref encode(fb::FlatBufferBuilder& b, const project_created& e) {
  return {s::EventBody::ProjectCreated, s::CreateProjectCreated(b, str(b, e.name)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const project_definition_updated& e) {
  return {s::EventBody::ProjectDefinitionUpdated,
          s::CreateProjectDefinitionUpdated(b, e.definition_version, str(b, e.yaml),
                                            str(b, e.content_sha256)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const project_secret_set& e) {
  return {s::EventBody::ProjectSecretSet,
          s::CreateProjectSecretSet(b, str(b, e.key), bytes(b, e.ciphertext)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const project_secret_removed& e) {
  return {s::EventBody::ProjectSecretRemoved,
          s::CreateProjectSecretRemoved(b, str(b, e.key)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const project_deleted& e) {
  return {s::EventBody::ProjectDeleted, s::CreateProjectDeleted(b, str(b, e.reason)).Union()};
}
fb::Offset<fb::Vector<fb::Offset<s::Param>>> params_of(fb::FlatBufferBuilder& b,
                                                       const param_map& m) {
  if (m.empty())
    return 0;
  std::vector<fb::Offset<s::Param>> params;
  for (auto& [k, v] : m)
    params.push_back(s::CreateParam(b, b.CreateString(k), b.CreateString(v)));
  return b.CreateVector(params);
}
body_ref encode(fb::FlatBufferBuilder& b, const build_number_allocated& e) {
  return {s::EventBody::BuildNumberAllocated,
          s::CreateBuildNumberAllocated(b, e.number, str(b, e.trigger), e.definition_version,
                                        params_of(b, e.params), str(b, e.ref), str(b, e.sha),
                                        str(b, e.reason), e.priority, e.rerun_of,
                                        strs(b, e.only_runs)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const cron_slot_reached& e) {
  return {s::EventBody::CronSlotReached,
          s::CreateCronSlotReached(b, str(b, e.trigger), e.slot_unix_s, e.fired).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const git_refs_polled& e) {
  return {s::EventBody::GitRefsPolled,
          s::CreateGitRefsPolled(b, str(b, e.trigger), str(b, e.url), params_of(b, e.refs)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const build_created& e) {
  return {s::EventBody::BuildCreated,
          s::CreateBuildCreated(b, str(b, e.project), e.number, str(b, e.trigger),
                                params_of(b, e.params), str(b, e.ref), str(b, e.sha),
                                str(b, e.reason), e.definition_version, strs(b, e.runs),
                                e.priority, e.rerun_of).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const build_cancelled& e) {
  return {s::EventBody::BuildCancelled, s::CreateBuildCancelled(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const build_completed& e) {
  return {s::EventBody::BuildCompleted,
          s::CreateBuildCompleted(b, to_schema(e.status)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const build_runs_added& e) {
  return {s::EventBody::BuildRunsAdded,
          s::CreateBuildRunsAdded(b, str(b, e.trigger), str(b, e.parent_run), strs(b, e.runs)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const build_pinned& e) {
  return {s::EventBody::BuildPinned,
          s::CreateBuildPinned(b, str(b, e.name), str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const build_unpinned& e) {
  return {s::EventBody::BuildUnpinned, s::CreateBuildUnpinned(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_artifacts_expired& e) {
  return {s::EventBody::RunArtifactsExpired,
          s::CreateRunArtifactsExpired(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_console_archived& e) {
  return {s::EventBody::RunConsoleArchived,
          s::CreateRunConsoleArchived(b, str(b, e.object), e.size, str(b, e.sha256)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const notification_planned& e) {
  return {s::EventBody::NotificationPlanned,
          s::CreateNotificationPlanned(b, str(b, e.id), str(b, e.kind), str(b, e.spec)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const notification_started& e) {
  return {s::EventBody::NotificationStarted,
          s::CreateNotificationStarted(b, str(b, e.id), e.attempt, e.lease_until_ms).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const notification_finished& e) {
  return {s::EventBody::NotificationFinished,
          s::CreateNotificationFinished(b, str(b, e.id), e.attempt, e.delivered, str(b, e.detail),
                                        e.retry_at_ms).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_queued& e) {
  return {s::EventBody::RunQueued,
          s::CreateRunQueued(b, str(b, e.project), e.build, str(b, e.name), str(b, e.host_tag),
                             str(b, e.rundef), e.attempt, e.timeout_s).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_assigned& e) {
  return {s::EventBody::RunAssigned,
          s::CreateRunAssigned(b, str(b, e.worker), e.attempt).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_started& e) {
  return {s::EventBody::RunStarted, s::CreateRunStarted(b, str(b, e.worker)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_completed& e) {
  return {s::EventBody::RunCompleted,
          s::CreateRunCompleted(b, to_schema(e.status), e.exit_code, str(b, e.message),
                                       e.console_size)
            .Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_cancel_requested& e) {
  return {s::EventBody::RunCancelRequested,
          s::CreateRunCancelRequested(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_requeued& e) {
  return {s::EventBody::RunRequeued,
          s::CreateRunRequeued(b, str(b, e.reason), e.attempt).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_artifact_stored& e) {
  return {s::EventBody::RunArtifactStored,
          s::CreateRunArtifactStored(b, str(b, e.path), e.size, str(b, e.sha256)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const run_tests_reported& e) {
  std::vector<fb::Offset<s::TestResult>> results;
  for (auto& r : e.results)
    results.push_back(s::CreateTestResult(b, str(b, r.name), to_schema(r.status),
                                          r.duration_ms, str(b, r.message)));
  auto results_vec = results.empty() ? 0 : b.CreateVector(results);
  return {s::EventBody::RunTestsReported,
          s::CreateRunTestsReported(b, str(b, e.suite), results_vec).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const worker_registered& e) {
  return {s::EventBody::WorkerRegistered,
          s::CreateWorkerRegistered(b, str(b, e.name), strs(b, e.tags), e.concurrency,
                                    str(b, e.host_json), str(b, e.token_sha256)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const worker_enlisted&) {
  return {s::EventBody::WorkerEnlisted, s::CreateWorkerEnlisted(b).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const worker_delisted& e) {
  return {s::EventBody::WorkerDelisted, s::CreateWorkerDelisted(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const worker_deleted& e) {
  return {s::EventBody::WorkerDeleted, s::CreateWorkerDeleted(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const worker_offline& e) {
  return {s::EventBody::WorkerOffline, s::CreateWorkerOffline(b, str(b, e.reason)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const worker_online&) {
  return {s::EventBody::WorkerOnline, s::CreateWorkerOnline(b).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const token_issued& e) {
  return {s::EventBody::TokenIssued,
          s::CreateTokenIssued(b, str(b, e.id), str(b, e.label), str(b, e.scope),
                               str(b, e.project), str(b, e.token_sha256)).Union()};
}
body_ref encode(fb::FlatBufferBuilder& b, const token_revoked& e) {
  return {s::EventBody::TokenRevoked, s::CreateTokenRevoked(b, str(b, e.reason)).Union()};
}

// ---- decoding helpers ----

std::string str(const fb::String* v) { return v ? v->str() : std::string{}; }

std::vector<std::string> strs(const fb::Vector<fb::Offset<fb::String>>* v) {
  std::vector<std::string> out;
  if (v) {
    out.reserve(v->size());
    for (auto x : *v)
      out.push_back(str(x));
  }
  return out;
}

param_map params_from(const fb::Vector<fb::Offset<s::Param>>* ps) {
  param_map m;
  if (ps)
    for (auto p : *ps)
      m.emplace(str(p->key()), str(p->value()));
  return m;
}

std::string bytes(const fb::Vector<std::uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string{};
}

status from_schema(s::Status x) { return static_cast<status>(x); }

// The buffer at an 8-byte boundary: RocksDB values and network buffers carry
// no alignment promise, and FlatBuffers reads scalars in place. Unaligned
// input is copied into a per-thread scratch buffer, which is safe because
// decoding copies everything out before returning.
class aligned_bytes {
 public:
  explicit aligned_bytes(std::string_view in) {
    if (reinterpret_cast<std::uintptr_t>(in.data()) % 8 == 0) {
      view_ = in;
    } else {
      thread_local std::vector<std::uint64_t> scratch;
      scratch.resize((in.size() + 7) / 8);
      std::memcpy(scratch.data(), in.data(), in.size());
      view_ = {reinterpret_cast<const char*>(scratch.data()), in.size()};
    }
  }
  const std::uint8_t* data() const { return reinterpret_cast<const std::uint8_t*>(view_.data()); }
  std::size_t size() const { return view_.size(); }

 private:
  std::string_view view_;
};

fb::Verifier::Options verifier_options() {
  fb::Verifier::Options o;
  o.max_depth = 16;
  o.max_tables = 1'000'000;
  return o;
}

result<event> decode_event(const s::Event& ev) {
  using B = s::EventBody;
  // The verifier accepts a union whose type is set but whose table is absent.
  if (!ev.body())
    return make_error(errc::malformed, "event without a body");
  switch (ev.body_type()) {
    case B::ProjectCreated: {
      auto t = ev.body_as_ProjectCreated();
      return event{project_created{str(t->name())}};
    }
    case B::ProjectDefinitionUpdated: {
      auto t = ev.body_as_ProjectDefinitionUpdated();
      return event{project_definition_updated{t->definition_version(), str(t->yaml()),
                                              str(t->content_sha256())}};
    }
    case B::ProjectSecretSet: {
      auto t = ev.body_as_ProjectSecretSet();
      return event{project_secret_set{str(t->key()), bytes(t->ciphertext())}};
    }
    case B::ProjectSecretRemoved:
      return event{project_secret_removed{str(ev.body_as_ProjectSecretRemoved()->key())}};
    case B::ProjectDeleted:
      return event{project_deleted{str(ev.body_as_ProjectDeleted()->reason())}};
    case B::BuildNumberAllocated: {
      auto t = ev.body_as_BuildNumberAllocated();
      build_number_allocated e{t->number(), str(t->trigger()), t->definition_version(),
                               params_from(t->params()), str(t->ref()), str(t->sha()),
                               str(t->reason()), t->priority(), t->rerun_of(),
                               strs(t->only_runs())};
      return event{std::move(e)};
    }
    case B::CronSlotReached: {
      auto t = ev.body_as_CronSlotReached();
      return event{cron_slot_reached{str(t->trigger()), t->slot_unix_s(), t->fired()}};
    }
    case B::GitRefsPolled: {
      auto t = ev.body_as_GitRefsPolled();
      return event{git_refs_polled{str(t->trigger()), str(t->url()), params_from(t->refs())}};
    }
    case B::BuildCreated: {
      auto t = ev.body_as_BuildCreated();
      build_created e{str(t->project()), t->number(), str(t->trigger()),
                      params_from(t->params()), str(t->ref()), str(t->sha()), str(t->reason()),
                      t->definition_version(), strs(t->runs()), t->priority(), t->rerun_of()};
      return event{std::move(e)};
    }
    case B::BuildCancelled:
      return event{build_cancelled{str(ev.body_as_BuildCancelled()->reason())}};
    case B::BuildCompleted:
      return event{build_completed{from_schema(ev.body_as_BuildCompleted()->status())}};
    case B::BuildRunsAdded: {
      auto t = ev.body_as_BuildRunsAdded();
      return event{build_runs_added{str(t->trigger()), str(t->parent_run()), strs(t->runs())}};
    }
    case B::BuildPinned: {
      auto t = ev.body_as_BuildPinned();
      return event{build_pinned{str(t->name()), str(t->reason())}};
    }
    case B::BuildUnpinned:
      return event{build_unpinned{str(ev.body_as_BuildUnpinned()->reason())}};
    case B::RunArtifactsExpired:
      return event{run_artifacts_expired{str(ev.body_as_RunArtifactsExpired()->reason())}};
    case B::RunConsoleArchived: {
      auto t = ev.body_as_RunConsoleArchived();
      return event{run_console_archived{str(t->object()), t->size(), str(t->sha256())}};
    }
    case B::NotificationPlanned: {
      auto t = ev.body_as_NotificationPlanned();
      return event{notification_planned{str(t->id()), str(t->kind()), str(t->spec())}};
    }
    case B::NotificationStarted: {
      auto t = ev.body_as_NotificationStarted();
      return event{notification_started{str(t->id()), t->attempt(), t->lease_until_ms()}};
    }
    case B::NotificationFinished: {
      auto t = ev.body_as_NotificationFinished();
      return event{notification_finished{str(t->id()), t->attempt(), t->delivered(),
                                         str(t->detail()), t->retry_at_ms()}};
    }
    case B::RunQueued: {
      auto t = ev.body_as_RunQueued();
      return event{run_queued{str(t->project()), t->build(), str(t->name()), str(t->host_tag()),
                              str(t->rundef()), t->attempt(), t->timeout_s()}};
    }
    case B::RunAssigned: {
      auto t = ev.body_as_RunAssigned();
      return event{run_assigned{str(t->worker()), t->attempt()}};
    }
    case B::RunStarted:
      return event{run_started{str(ev.body_as_RunStarted()->worker())}};
    case B::RunCompleted: {
      auto t = ev.body_as_RunCompleted();
      return event{run_completed{from_schema(t->status()), t->exit_code(), str(t->message()),
                                 t->console_size()}};
    }
    case B::RunCancelRequested:
      return event{run_cancel_requested{str(ev.body_as_RunCancelRequested()->reason())}};
    case B::RunRequeued: {
      auto t = ev.body_as_RunRequeued();
      return event{run_requeued{str(t->reason()), t->attempt()}};
    }
    case B::RunArtifactStored: {
      auto t = ev.body_as_RunArtifactStored();
      return event{run_artifact_stored{str(t->path()), t->size(), str(t->sha256())}};
    }
    case B::RunTestsReported: {
      auto t = ev.body_as_RunTestsReported();
      run_tests_reported e{str(t->suite()), {}};
      if (auto rs = t->results())
        for (auto r : *rs)
          e.results.push_back({str(r->name()), from_schema(r->status()), r->duration_ms(),
                               str(r->message())});
      return event{std::move(e)};
    }
    case B::WorkerRegistered: {
      auto t = ev.body_as_WorkerRegistered();
      return event{worker_registered{str(t->name()), strs(t->tags()), t->concurrency(),
                                     str(t->host_json()), str(t->token_sha256())}};
    }
    case B::WorkerEnlisted:
      return event{worker_enlisted{}};
    case B::WorkerDelisted:
      return event{worker_delisted{str(ev.body_as_WorkerDelisted()->reason())}};
    case B::WorkerDeleted:
      return event{worker_deleted{str(ev.body_as_WorkerDeleted()->reason())}};
    case B::WorkerOffline:
      return event{worker_offline{str(ev.body_as_WorkerOffline()->reason())}};
    case B::WorkerOnline:
      return event{worker_online{}};
    case B::TokenIssued: {
      auto t = ev.body_as_TokenIssued();
      return event{token_issued{str(t->id()), str(t->label()), str(t->scope()),
                                str(t->project()), str(t->token_sha256())}};
    }
    case B::TokenRevoked:
      return event{token_revoked{str(ev.body_as_TokenRevoked()->reason())}};
    case B::NONE:
      break;
  }
  return make_error(errc::unknown_event_type,
                    "event type " + std::to_string(static_cast<int>(ev.body_type())));
}

result<commit> read_commit(const s::Commit& c) {
  commit out;
  out.stream.value = str(c.stream());
  out.first_version.value = c.first_version();
  out.meta = {c.time_unix_ns(), str(c.principal()), str(c.command_id()),
              str(c.correlation_id())};
  auto events = c.events();
  if (out.stream.value.empty() || out.first_version.value == 0 || !events || events->size() == 0)
    return make_error(errc::malformed, "commit without stream, version or events");
  out.events.reserve(events->size());
  for (auto ev : *events) {
    auto decoded = decode_event(*ev);
    if (!decoded)
      return decoded.error();
    out.events.push_back(std::move(*decoded));
  }
  return out;
}

bool read_digest(const fb::Vector<std::uint8_t>* v, digest& out) {
  if (!v || v->size() != out.size())
    return false;
  std::copy(v->begin(), v->end(), out.begin());
  return true;
}

} // namespace

std::string encode_commit(const commit& c) {
  fb::FlatBufferBuilder b(1024 + 256 * c.events.size());
  std::vector<fb::Offset<s::Event>> events;
  events.reserve(c.events.size());
  for (auto& e : c.events) {
    auto [type, body] = std::visit([&](auto& x) { return encode(b, x); }, e);
    events.push_back(s::CreateEvent(b, type, body));
  }
  auto events_vec = b.CreateVector(events);
  auto root = s::CreateCommit(b, str(b, c.stream.value), c.first_version.value,
                              c.meta.time_unix_ns, str(b, c.meta.principal),
                              str(b, c.meta.command_id), str(b, c.meta.correlation_id),
                              events_vec);
  b.Finish(root);
  return {reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()};
}

result<commit> decode_commit(std::string_view bytes) {
  aligned_bytes buf{bytes};
  fb::Verifier v(buf.data(), buf.size(), verifier_options());
  if (!v.VerifyBuffer<s::Commit>(nullptr))
    return make_error(errc::malformed, "commit failed verification");
  return read_commit(*fb::GetRoot<s::Commit>(buf.data()));
}

std::string encode_record(global_seq seq, const digest& prev_hash, const digest& hash,
                          std::string_view commit_bytes) {
  fb::FlatBufferBuilder b(commit_bytes.size() + 160);
  // The nested commit must sit on an 8-byte boundary to be read in place.
  b.ForceVectorAlignment(commit_bytes.size(), 1, 8);
  auto nested = b.CreateVector(reinterpret_cast<const std::uint8_t*>(commit_bytes.data()),
                               commit_bytes.size());
  auto prev = b.CreateVector(prev_hash.data(), prev_hash.size());
  auto self = b.CreateVector(hash.data(), hash.size());
  b.Finish(s::CreateRecord(b, seq.value, prev, self, nested), s::RecordIdentifier());
  return {reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()};
}

result<record_view> decode_record(std::string_view bytes) {
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % 8 != 0)
    return make_error(errc::malformed, "record buffer is not 8-byte aligned");
  auto data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  fb::Verifier v(data, bytes.size(), verifier_options());
  if (!s::VerifyRecordBuffer(v))
    return make_error(errc::malformed, "record failed verification");
  auto r = s::GetRecord(data);
  record_view out;
  out.seq.value = r->global_seq();
  if (!read_digest(r->prev_hash(), out.prev_hash) || !read_digest(r->hash(), out.hash)
      || !r->commit() || out.seq.value == 0)
    return make_error(errc::malformed, "record without sequence, hashes or commit");
  out.commit_bytes = {reinterpret_cast<const char*>(r->commit()->data()), r->commit()->size()};
  return out;
}

result<logged_commit> decode_logged_commit(std::string_view record_bytes) {
  aligned_bytes buf{record_bytes};
  auto rec = decode_record({reinterpret_cast<const char*>(buf.data()), buf.size()});
  if (!rec)
    return rec.error();
  // Verified as a nested buffer by decode_record already.
  auto body = read_commit(*fb::GetRoot<s::Commit>(rec->commit_bytes.data()));
  if (!body)
    return body.error();
  return logged_commit{rec->seq, rec->prev_hash, rec->hash, std::move(*body)};
}

} // namespace kiln::codec
