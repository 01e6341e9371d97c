#pragma once
// `kiln bench <what>`: each benchmark measures kiln against its raw engine in
// the same run (docs/performance.md). Each returns the exit code.
#include <filesystem>

namespace kiln::cli {
class args;
int bench_log(const args& a);
int bench_core(const args& a);
int bench_gateway(const args& a);
int bench_e2e(const args& a);
int bench_objectstore(const args& a);
int bench_cluster(const args& a);
// The child half of bench core's restart measurement.
int bench_core_startup_only(const std::filesystem::path& dir);
} // namespace kiln::cli
