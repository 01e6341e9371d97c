#pragma once
// The node's admin token: `<data>/admin.token` (mode 0600), made at first
// start; every start registers the file's token with the core, so a lost
// or replaced file is simply the new admin token.
#include "events/result.hpp"

#include <filesystem>

namespace kiln::core {
class core;
}

namespace kiln::cli {

status_result install_admin_token(core::core& c, const std::filesystem::path& file);

} // namespace kiln::cli
