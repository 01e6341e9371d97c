#include "gateway/s3_artifact_store.hpp"

#include "storage/s3_client.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace kiln::gateway {

namespace fs = std::filesystem;

namespace {

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
    for (auto& t : pool_)
      t.join();
  }

  fs::path receive_path() override { return local_->receive_path(); }

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

  void submit(std::function<void()> job) {
    {
      std::lock_guard lock{mu_};
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock{mu_};
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty())
          return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::unique_ptr<storage::s3_client> s3_;
  s3_store_options o_;
  std::unique_ptr<artifact_store> local_;  // only for its spool paths
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
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
