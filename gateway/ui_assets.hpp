#pragma once
// The web UI's files (gateway/ui), built into the binary by
// cmake/embed_files.cmake: every gateway serves the UI it was built with.
#include <span>
#include <string_view>

namespace kiln::gateway {

struct ui_asset {
  std::string_view path;          // relative to gateway/ui: "index.html", "app.js"
  std::string_view content_type;
  std::string_view etag;          // quoted, from the file's SHA-256
  std::string_view body;
};

std::span<const ui_asset> ui_assets();

} // namespace kiln::gateway
