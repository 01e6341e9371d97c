#include "actors/console_archive.hpp"

namespace kiln::domain {

std::vector<run_key> consoles_to_archive(const read_model& model, std::size_t limit) {
  std::vector<run_key> out;
  for (auto& [name, p] : model.projects())
    for (auto& [number, b] : p.builds)
      for (auto& r : b.runs) {
        if (out.size() >= limit)
          return out;
        if (r.finished() && !r.console_archived)
          out.push_back({name, number, r.name});
      }
  return out;
}

} // namespace kiln::domain
