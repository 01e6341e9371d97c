#pragma once
// Console archives (issue 8), pure: the finished runs whose console is not
// yet stored as one object next to their artifacts, in key order (project,
// build, run): the read model keeps them as an index, so asking costs no scan.
// The archiver (console_archiver.hpp) stores and records them.
#include "actors/read_model.hpp"

#include <cstddef>
#include <vector>

namespace kiln::domain {

std::vector<run_key> consoles_to_archive(const read_model& model, std::size_t limit);

} // namespace kiln::domain
