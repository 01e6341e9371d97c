#include "gateway/artifact_store.hpp"

#include <openssl/rand.h>

#include <array>
#include <utility>

namespace kiln::gateway {

namespace fs = std::filesystem;

namespace {

class local_artifact_store final : public artifact_store {
 public:
  explicit local_artifact_store(fs::path root) : root_(std::move(root)) {
    std::error_code ec;
    fs::create_directories(root_ / ".incoming", ec);
  }

  fs::path receive_path() override {
    unsigned char rnd[12];
    RAND_bytes(rnd, sizeof rnd);
    static const char* hex = "0123456789abcdef";
    std::string name = "upload-";
    for (auto b : rnd) {
      name += hex[b >> 4];
      name += hex[b & 15];
    }
    return root_ / ".incoming" / name;
  }

  void put(const artifact_key& key, const fs::path& received, const std::string&,
           std::function<void(status_result)> done) override {
    auto dest = file_of(key);
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    fs::rename(received, dest, ec);
    if (ec) {
      std::error_code ignored;
      fs::remove(received, ignored);
      return done(error{"io", "cannot store artifact " + key.path + ": " + ec.message()});
    }
    done(kiln::ok);
  }

  status_result remove(const artifact_key& key) override {
    std::error_code ec;
    fs::remove(file_of(key), ec);
    if (ec)
      return error{"io", "cannot remove artifact " + key.path + ": " + ec.message()};
    return kiln::ok;
  }

  result<artifact_source> locate(const artifact_key& key) override {
    auto f = file_of(key);
    std::error_code ec;
    if (!fs::is_regular_file(f, ec))
      return error{"not_found", "artifact '" + key.path + "' is recorded but not stored here"};
    return artifact_source{f, {}, false};
  }

 private:
  fs::path file_of(const artifact_key& k) const {
    return root_ / k.project / std::to_string(k.build) / k.run / k.path;
  }
  fs::path root_;
};

} // namespace

void artifact_store::read(const artifact_key& key, std::optional<byte_range>,
                          std::function<bool(std::string_view)>,
                          std::function<void(status_result)> done) {
  done(error{"not_implemented", "this store serves artifact '" + key.path + "' as a file"});
}

result<std::string> artifact_store::put_console(const artifact_key& run, const fs::path&,
                                                const std::string&) {
  return error{"not_implemented", "this store keeps no console of " + run.run};
}

std::unique_ptr<artifact_store> make_local_artifact_store(fs::path root) {
  return std::make_unique<local_artifact_store>(std::move(root));
}

std::string content_type_for(std::string_view path) {
  static const std::array<std::pair<std::string_view, std::string_view>, 17> types{{
    {".txt", "text/plain; charset=utf-8"},  {".log", "text/plain; charset=utf-8"},
    {".md", "text/markdown; charset=utf-8"}, {".json", "application/json"},
    {".xml", "application/xml"},             {".html", "text/html; charset=utf-8"},
    {".csv", "text/csv; charset=utf-8"},     {".svg", "image/svg+xml"},
    {".png", "image/png"},                   {".jpg", "image/jpeg"},
    {".gif", "image/gif"},                   {".pdf", "application/pdf"},
    {".gz", "application/gzip"},             {".tgz", "application/gzip"},
    {".zip", "application/zip"},             {".tar", "application/x-tar"},
    {".xz", "application/x-xz"},
  }};
  auto slash = path.rfind('/');
  auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  // junit.xml.1 and the like: the results of a run, XML all the same.
  if (name.starts_with("junit.xml"))
    return "application/xml";
  for (auto& [ext, type] : types)
    if (name.size() > ext.size() && name.ends_with(ext))
      return std::string{type};
  return "application/octet-stream";
}

} // namespace kiln::gateway
