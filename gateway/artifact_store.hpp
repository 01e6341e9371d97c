#pragma once
// Where artifacts live. Uploads are streamed to disk by the HTTP server
// (never held in memory), hashed by the gateway, recorded by the core
// (ArtifactStored: path, size, sha256) and then handed to the store. The
// local store keeps them under the data dir; object storage (issue 8)
// implements the same interface.
#include "events/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::gateway {

struct artifact_key {
  std::string project;
  std::uint32_t build = 0;
  std::string run;
  std::string path;  // checked by url.hpp's artifact_path: relative, no ".."
};

class artifact_store {
 public:
  virtual ~artifact_store() = default;
  // A fresh file for an upload on its way in.
  virtual std::filesystem::path receive_path() = 0;
  // Takes a received upload in; the received file is gone afterwards
  // either way.
  virtual status_result put(const artifact_key& key, const std::filesystem::path& received) = 0;
  // A file on this machine holding the artifact; error not_found if none.
  virtual result<std::filesystem::path> local_file(const artifact_key& key) = 0;
};

std::unique_ptr<artifact_store> make_local_artifact_store(std::filesystem::path root);

// By the name's extension: text/plain for logs, application/gzip, … and
// application/octet-stream when unknown.
std::string content_type_for(std::string_view path);

} // namespace kiln::gateway
