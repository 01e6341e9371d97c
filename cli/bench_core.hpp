#pragma once
#include <filesystem>

namespace kiln::cli {
class args;
int bench_core(const args& a);
// The child half of the restart measurement.
int bench_core_startup_only(const std::filesystem::path& dir);
} // namespace kiln::cli
