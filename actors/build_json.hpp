#pragma once
// Builds and runs as the API renders them (docs/api.md): the gateway's
// answers and the body of a build's outgoing webhooks are the same JSON.
#include "actors/read_model.hpp"

#include <nlohmann/json.hpp>

namespace kiln::core {

nlohmann::json run_json(const domain::run_summary& r, const std::string& project,
                        std::uint32_t build);

// `with_notifications`: the API shows each notification's delivery; a
// webhook's own body leaves them out (they are under way as it is sent).
nlohmann::json build_json(const domain::build_summary& b, bool with_notifications = true);

} // namespace kiln::core
