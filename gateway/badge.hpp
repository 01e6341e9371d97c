#pragma once
// A build status badge (SVG), in the look READMEs already show for other CIs.
#include <string>
#include <string_view>

namespace kiln::gateway {

// `status` is a build's status (PASSED, FAILED, RUNNING, …) or "" for a
// project with no build yet.
std::string status_badge(std::string_view label, std::string_view status);

} // namespace kiln::gateway
