#pragma once
// How client commands reach a server (API.md): `--server URL` (default
// http://127.0.0.1:8080), the token from `--token-file` or `KILN_TOKEN`.
#include "gateway/api_client.hpp"

#include <set>
#include <string>

namespace kiln::cli {

class args;

inline const std::set<std::string> server_options{"server", "token-file", "ca-file"};

// Throws usage_error when the token file cannot be read.
client::client_options server_from(const args& a);

} // namespace kiln::cli
