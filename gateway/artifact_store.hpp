#pragma once
// Where artifacts live. Uploads are streamed to disk by the HTTP server
// (never held in memory), hashed by the gateway, handed to the store, and
// recorded by the core (ArtifactStored: path, size, sha256) only once the
// store has them (a refused record removes them again). The local store
// keeps them under the data dir; the S3 store (s3_artifact_store.hpp) in a
// bucket, served by redirect to a presigned URL or proxied.
#include "events/result.hpp"
#include "gateway/http_server.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::gateway {

struct artifact_key {
  std::string project;
  std::uint32_t build = 0;
  std::string run;
  std::string path;  // checked by url.hpp's artifact_path: relative, no ".."
};

// How a GET of an artifact is answered.
struct artifact_source {
  std::filesystem::path file;  // on this machine: its bytes
  std::string redirect;        // elsewhere: a URL the client may fetch (302)
  bool proxied = false;        // elsewhere: read() streams its bytes
};

using byte_range = std::pair<std::uint64_t, std::uint64_t>;  // [first, last]

// An upload streamed to the store as it arrives (the HTTP server writes the
// body into it), instead of spooled to a file first.
class artifact_upload : public body_sink {
 public:
  // After the last byte: the SHA-256 of every byte written (hex).
  virtual std::string sha256() = 0;
  // No more bytes: the artifact is stored (or not) -> `done`, from any thread.
  virtual void finish(std::function<void(status_result)> done) = 0;
};

class artifact_store {
 public:
  virtual ~artifact_store() = default;
  // A fresh file for an upload on its way in.
  virtual std::filesystem::path receive_path() = 0;
  // A streamed upload of `key`, for stores that take bytes as they arrive;
  // null: the upload goes to receive_path() and then put().
  virtual std::shared_ptr<artifact_upload> open_upload(const artifact_key&) { return nullptr; }
  // Takes a received upload in and calls `done` once it is stored, from
  // any thread; the received file is gone afterwards either way.
  virtual void put(const artifact_key& key, const std::filesystem::path& received,
                   const std::string& sha256, std::function<void(status_result)> done) = 0;
  virtual status_result remove(const artifact_key& key) = 0;
  // Where the artifact is; error not_found if the store has none.
  virtual result<artifact_source> locate(const artifact_key& key) = 0;
  // A proxied artifact's bytes (all, or `range`) to `out` in order, on a
  // store thread; then `done`. `out` returning false stops it.
  virtual void read(const artifact_key& key, std::optional<byte_range> range,
                    std::function<bool(std::string_view)> out,
                    std::function<void(status_result)> done);
  // Object stores keep each finished run's console as one object next to
  // its artifacts (`key.path` unused); the object's name. The local store
  // does not (the log keeps consoles): error not_implemented.
  virtual bool keeps_consoles() const { return false; }
  virtual result<std::string> put_console(const artifact_key& run, const std::filesystem::path& file,
                                          const std::string& sha256);
};

std::unique_ptr<artifact_store> make_local_artifact_store(std::filesystem::path root);

// By the name's extension: text/plain for logs, application/gzip, … and
// application/octet-stream when unknown.
std::string content_type_for(std::string_view path);

} // namespace kiln::gateway
