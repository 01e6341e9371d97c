#include "gateway/s3_artifact_store.hpp"

#include "storage/s3_client.hpp"

#include "events/sha256.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace kiln::gateway {

namespace fs = std::filesystem;

namespace {

using job_queue = std::function<void(std::function<void()>)>;

// One PUT whose body is an upload's bytes as they arrive, handed through a
// bounded pipe to a store thread. The last byte is held back until
// finish(), which comes only once the request is authorised: an upload that
// is refused or cut is aborted before S3 has all of it, so S3 keeps
// nothing. One stream to S3 is as fast as S3 takes a single client's PUT;
// parts in parallel add round trips and a final assembly.
class streamed_put final : public std::enable_shared_from_this<streamed_put> {
 public:
  streamed_put(storage::s3_client& s3, std::string key, std::string type, std::uint64_t size,
               std::size_t capacity)
      : s3_(s3), key_(std::move(key)), type_(std::move(type)), size_(size), capacity_(capacity) {}

  // On a store thread: blocks while the bytes flow.
  void send() {
    storage::s3_client::source pull = [this](char* buf, std::size_t max) { return read(buf, max); };
    auto r = s3_.put_stream(key_, size_, type_, pull);
    std::function<void(status_result)> done;
    std::function<void()> resume;
    {
      std::lock_guard lock{mu_};
      result_ = r;
      held_ = 0;
      chunks_.clear();  // S3 answered: whatever is still to come is dropped
      if (finishing_)
        done = std::move(done_);
      resume = std::move(resume_);
    }
    cv_.notify_all();
    if (resume)
      resume();
    if (done)
      done(r);
  }

  void write(std::string_view bytes) {
    {
      std::lock_guard lock{mu_};
      if (result_)
        return;
      chunks_.emplace_back(bytes);
      held_ += bytes.size();
    }
    cv_.notify_all();
  }

  bool saturated() {
    std::lock_guard lock{mu_};
    return held_ >= capacity_;
  }

  void when_ready(std::function<void()> resume) {
    std::unique_lock lock{mu_};
    if (held_ < capacity_) {
      lock.unlock();
      return resume();
    }
    resume_ = std::move(resume);
  }

  void abandon() {
    {
      std::lock_guard lock{mu_};
      abandoned_ = true;
    }
    cv_.notify_all();
  }

  void finish(std::function<void(status_result)> done) {
    std::unique_lock lock{mu_};
    finishing_ = true;
    if (result_) {
      auto r = *result_;
      lock.unlock();
      return done(r);
    }
    done_ = std::move(done);
    lock.unlock();
    cv_.notify_all();
  }

  bool stored() {
    std::lock_guard lock{mu_};
    return result_ && *result_;
  }

 private:
  std::size_t read(char* buf, std::size_t max) {
    std::function<void()> resume;
    std::size_t n = 0;
    {
      std::unique_lock lock{mu_};
      // Everything but the last byte may go before finish().
      auto allowed = [&] { return finishing_ ? size_ - sent_ : size_ - 1 - sent_; };
      cv_.wait(lock, [&] { return abandoned_ || (held_ > 0 && allowed() > 0); });
      if (abandoned_)
        return storage::s3_client::abort_transfer;
      auto want = std::min<std::uint64_t>({max, allowed(), held_});
      while (n < want) {
        auto& front = chunks_.front();
        auto take = std::min<std::size_t>(want - n, front.size() - front_used_);
        std::memcpy(buf + n, front.data() + front_used_, take);
        n += take;
        front_used_ += take;
        if (front_used_ == front.size()) {
          chunks_.pop_front();
          front_used_ = 0;
        }
      }
      sent_ += n;
      held_ -= n;
      if (held_ < capacity_)
        resume = std::move(resume_);
    }
    if (resume)
      resume();
    return n;
  }

  storage::s3_client& s3_;
  std::string key_, type_;
  std::uint64_t size_;
  std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  std::size_t front_used_ = 0;
  std::uint64_t held_ = 0, sent_ = 0;
  bool finishing_ = false, abandoned_ = false;
  std::optional<status_result> result_;
  std::function<void()> resume_;
  std::function<void(status_result)> done_;
};

// An artifact written to S3 as its bytes arrive: they are hashed and cut
// into parts; the first full part starts a multipart upload and each part
// goes out on the store's threads, at most `parallel` held at once (the
// reader pauses meanwhile: saturated()). An artifact smaller than a part is
// one PUT at finish(). One that is not finished is aborted.
class s3_upload final : public artifact_upload, public std::enable_shared_from_this<s3_upload> {
 public:
  s3_upload(storage::s3_client& s3, job_queue submit, std::string key, std::string type)
      : s3_(s3), submit_(std::move(submit)), key_(std::move(key)), type_(std::move(type)),
        part_size_(s3.config().part_size), parallel_(std::max(1u, s3.config().parallel_parts)),
        stream_max_(s3.config().stream_put_max) {}

  ~s3_upload() override {
    if (stream_ && !stream_->stored())
      stream_->abandon();
    if (!upload_id_.empty() && !completed_) {
      auto& s3 = s3_;
      submit_([&s3, key = key_, id = upload_id_] { s3.abort_multipart(key, id); });
    }
  }

  // A body of a part or more: the multipart upload is started at once,
  // while its first part is still arriving.
  void begin(std::optional<std::uint64_t> length) override {
    if (!length || *length < part_size_)
      return;
    if (*length <= stream_max_) {
      stream_ = std::make_shared<streamed_put>(s3_, key_, type_, *length, part_size_);
      submit_([stream = stream_] { stream->send(); });
      return;
    }
    {
      std::lock_guard lock{mu_};
      started_ = true;
    }
    submit_([self = shared_from_this()] { self->start(); });
  }

  // Bytes go straight into the part being filled (reserved whole, so it
  // is never copied to grow); a full part is handed on as it is.
  void write(std::string_view bytes) override {
    sha_.update(bytes);
    if (stream_)
      return stream_->write(bytes);
    while (!bytes.empty()) {
      if (buffer_.capacity() < part_size_ && started_)
        buffer_.reserve(part_size_);
      auto n = std::min<std::size_t>(bytes.size(), part_size_ - buffer_.size());
      buffer_.append(bytes.substr(0, n));
      bytes.remove_prefix(n);
      if (buffer_.size() == part_size_)
        send_part(std::exchange(buffer_, {}));
    }
  }

  bool saturated() override {
    if (stream_)
      return stream_->saturated();
    std::lock_guard lock{mu_};
    return held_ >= parallel_;
  }

  void when_ready(std::function<void()> resume) override {
    if (stream_)
      return stream_->when_ready(std::move(resume));
    std::unique_lock lock{mu_};
    if (held_ < parallel_) {
      lock.unlock();
      return resume();
    }
    resume_ = std::move(resume);
  }

  void abandon() override {
    if (stream_)
      stream_->abandon();
    std::lock_guard lock{mu_};
    if (!failed_)
      failed_ = error{"io", "the upload was cut short"};
  }

  std::string sha256() override { return sha_.hex(); }

  void finish(std::function<void(status_result)> done) override {
    sha256();
    if (stream_)
      return stream_->finish(std::move(done));
    std::unique_lock lock{mu_};
    done_ = std::move(done);
    finishing_ = true;
    if (!started_) {
      // Smaller than a part: one PUT.
      lock.unlock();
      submit_([self = shared_from_this()] {
        auto put = self->s3_.put_bytes(self->key_, self->buffer_, self->type_);
        self->completed_ = bool(put);
        self->done_(put);
      });
      return;
    }
    lock.unlock();
    if (!buffer_.empty())
      send_part(std::move(buffer_));
    settle();
  }

 private:
  void send_part(std::string bytes) {
    std::unique_lock lock{mu_};
    auto number = ++parts_;
    etags_.resize(parts_);
    ++held_;
    pending_.emplace_back(number, std::move(bytes));
    if (!started_) {
      started_ = true;
      lock.unlock();
      submit_([self = shared_from_this()] { self->start(); });
      return;
    }
    if (!upload_id_.empty())
      flush_pending(lock);
  }

  void start() {
    auto id = s3_.start_multipart(key_, type_);
    std::unique_lock lock{mu_};
    if (!id) {
      failed_ = id.error();
      held_ -= pending_.size();
      pending_.clear();
      lock.unlock();
      wake();
      return settle();
    }
    upload_id_ = *id;
    flush_pending(lock);
  }

  // Sends the parts held while the upload was being started. Called locked.
  void flush_pending(std::unique_lock<std::mutex>& lock) {
    auto parts = std::move(pending_);
    pending_.clear();
    in_flight_ += parts.size();
    lock.unlock();
    for (auto& [number, bytes] : parts)
      submit_([self = shared_from_this(), number = number, bytes = std::move(bytes)] {
        self->upload_part(number, bytes);
      });
  }

  void upload_part(unsigned number, const std::string& bytes) {
    std::optional<error> problem;
    {
      std::lock_guard lock{mu_};
      problem = failed_;
    }
    result<std::string> etag = problem ? result<std::string>{*problem}
                                       : s3_.put_part(key_, upload_id_, number, bytes);
    {
      std::lock_guard lock{mu_};
      if (etag)
        etags_[number - 1] = *etag;
      else if (!failed_)
        failed_ = etag.error();
      --in_flight_;
      --held_;
    }
    wake();
    settle();
  }

  void wake() {
    std::function<void()> resume;
    {
      std::lock_guard lock{mu_};
      if (held_ < parallel_)
        resume = std::move(resume_);
      resume_ = nullptr;
    }
    if (resume)
      resume();
  }

  // Once finishing and nothing is in flight: complete (or abort) the upload.
  void settle() {
    std::unique_lock lock{mu_};
    if (!finishing_ || in_flight_ > 0 || !pending_.empty() || settled_ || (started_ && upload_id_.empty() && !failed_))
      return;
    settled_ = true;
    auto failed = failed_;
    lock.unlock();
    submit_([self = shared_from_this(), failed] {
      status_result r = failed ? status_result{*failed} : self->s3_.complete_multipart(
                                                            self->key_, self->upload_id_, self->etags_);
      if (r) {
        self->completed_ = true;
      } else if (!self->upload_id_.empty()) {
        self->s3_.abort_multipart(self->key_, self->upload_id_);
        self->completed_ = true;  // aborted: nothing left to clean
      }
      self->done_(r);
    });
  }

  storage::s3_client& s3_;
  job_queue submit_;
  std::string key_, type_;
  std::uint64_t part_size_;
  unsigned parallel_;
  std::uint64_t stream_max_;
  std::shared_ptr<streamed_put> stream_;  // set when the upload is one streamed PUT
  kiln::sha256 sha_;
  std::string buffer_;  // written and not yet in a part

  std::mutex mu_;
  unsigned parts_ = 0;
  std::size_t held_ = 0;       // parts in memory (pending or in flight)
  std::size_t in_flight_ = 0;
  std::vector<std::pair<unsigned, std::string>> pending_;  // until the upload id is known
  std::vector<std::string> etags_;
  std::string upload_id_;
  bool started_ = false, finishing_ = false, settled_ = false;
  std::atomic<bool> completed_{false};
  std::optional<error> failed_;
  std::function<void()> resume_;
  std::function<void(status_result)> done_;
};

class s3_artifact_store final : public artifact_store {
 public:
  s3_artifact_store(std::unique_ptr<storage::s3_client> s3, s3_store_options o)
      : s3_(std::move(s3)), o_(std::move(o)), local_(make_local_artifact_store(o_.spool)) {
    for (unsigned i = 0; i < std::max(1u, o_.threads); ++i)
      pool_.emplace_back([this] { work(); });
  }

  ~s3_artifact_store() override {
    {
      std::lock_guard lock{mu_};
      stopping_ = true;
    }
    cv_.notify_all();
    // A job still running may have started a thread meanwhile.
    for (;;) {
      std::vector<std::thread> threads;
      {
        std::lock_guard lock{mu_};
        threads.swap(pool_);
      }
      if (threads.empty())
        break;
      for (auto& t : threads)
        t.join();
    }
  }

  fs::path receive_path() override { return local_->receive_path(); }

  std::shared_ptr<artifact_upload> open_upload(const artifact_key& key) override {
    return std::make_shared<s3_upload>(*s3_, [this](std::function<void()> job) { submit(std::move(job)); },
                                       object_of(key), content_type_for(key.path));
  }

  void put(const artifact_key& key, const fs::path& received, const std::string& sha256,
           std::function<void(status_result)> done) override {
    auto name = object_of(key);
    submit([this, name, received, sha256, done = std::move(done), path = key.path] {
      auto t0 = std::chrono::steady_clock::now();
      auto put = s3_->put_file(name, received, content_type_for(path), sha256);
      std::error_code ec;
      auto size = fs::file_size(received, ec);
      fs::remove(received, ec);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0).count();
      if (put)
        spdlog::info("artifacts s3=put key=\"{}\" bytes={} ms={}", name, size, ms);
      else
        spdlog::warn("artifacts s3=put_failed key=\"{}\" error={} message=\"{}\"", name,
                     put.error().code, put.error().message);
      done(put);
    });
  }

  status_result remove(const artifact_key& key) override { return s3_->remove(object_of(key)); }

  bool keeps_consoles() const override { return true; }

  // Beside the run's folder of artifacts, so that no artifact name can clash.
  result<std::string> put_console(const artifact_key& k, const fs::path& file,
                                  const std::string& sha256) override {
    auto name = o_.prefix + k.project + "/" + std::to_string(k.build) + "/" + k.run + ".console.log";
    if (auto put = s3_->put_file(name, file, "text/plain; charset=utf-8", sha256); !put)
      return put.error();
    return name;
  }

  result<artifact_source> locate(const artifact_key& key) override {
    if (o_.proxy_downloads)
      return artifact_source{{}, {}, true};
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    return artifact_source{{}, s3_->presigned_get(object_of(key), o_.presign_expiry_s, now), false};
  }

  void read(const artifact_key& key, std::optional<byte_range> range,
            std::function<bool(std::string_view)> out,
            std::function<void(status_result)> done) override {
    submit([this, name = object_of(key), range, out = std::move(out), done = std::move(done)] {
      done(s3_->get(name, out, range));
    });
  }

 private:
  std::string object_of(const artifact_key& k) const {
    return o_.prefix + k.project + "/" + std::to_string(k.build) + "/" + k.run + "/" + k.path;
  }

  // A streamed PUT holds its thread while its upload arrives: when no
  // thread is idle, another is started (up to max_threads), so that a slow
  // uploader never holds up the others.
  void submit(std::function<void()> job) {
    {
      std::lock_guard lock{mu_};
      jobs_.push_back(std::move(job));
      if (!stopping_ && idle_ < jobs_.size() && pool_.size() < max_threads)
        pool_.emplace_back([this] { work(); });
    }
    cv_.notify_one();
  }

  void work() {
    std::unique_lock lock{mu_};
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty())
        return;
      {
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
      }  // gone before relocking: what it held may submit more on its way out
      lock.lock();
    }
  }

  static constexpr std::size_t max_threads = 64;

  std::unique_ptr<storage::s3_client> s3_;
  s3_store_options o_;
  std::unique_ptr<artifact_store> local_;  // only for its spool paths
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::size_t idle_ = 0;
  std::vector<std::thread> pool_;
};

} // namespace

result<std::pair<std::string, std::string>> parse_s3_url(const std::string& url) {
  if (!url.starts_with("s3://"))
    return error{"invalid_argument", "an S3 store is s3://BUCKET[/PREFIX], not '" + url + "'"};
  auto rest = url.substr(5);
  auto slash = rest.find('/');
  auto bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (bucket.empty())
    return error{"invalid_argument", "'" + url + "' names no bucket"};
  if (!prefix.empty() && !prefix.ends_with('/'))
    prefix += '/';
  return std::pair{bucket, prefix};
}

result<std::unique_ptr<artifact_store>> make_s3_artifact_store(const storage::s3_config& s3,
                                                               s3_store_options options) {
  auto client = std::make_unique<storage::s3_client>(s3);
  if (auto ok = client->check_bucket(); !ok)
    return error{ok.error().code, "the artifact store s3://" + s3.bucket + " at " + s3.endpoint
                                    + " is not usable: " + ok.error().message};
  return std::unique_ptr<artifact_store>{
    std::make_unique<s3_artifact_store>(std::move(client), std::move(options))};
}

} // namespace kiln::gateway
