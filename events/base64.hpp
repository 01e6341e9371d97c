#pragma once
// Standard base64 (RFC 4648, with padding): raw bytes inside JSON, such as
// the console tail a worker sends with a run's final status.
#include <optional>
#include <string>
#include <string_view>

namespace kiln {

std::string base64_encode(std::string_view bytes);

// nullopt for anything that is not canonical padded base64.
std::optional<std::string> base64_decode(std::string_view text);

} // namespace kiln
