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

// Registers the token in `file`, made first if there is none. In a cluster
// (`shared`) every core registers the same one: a core without the file
// refuses to make a new token (that would revoke the others'); its
// operator copies admin.token from a core that has it.
status_result install_admin_token(core::core& c, const std::filesystem::path& file,
                                  bool shared = false);

} // namespace kiln::cli
