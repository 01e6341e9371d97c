#include "actors/console_archive.hpp"

namespace kiln::domain {

std::vector<run_key> consoles_to_archive(const read_model& model, std::size_t limit) {
  auto& pending = model.unarchived_consoles();
  std::vector<run_key> out;
  for (auto it = pending.begin(); it != pending.end() && out.size() < limit; ++it)
    out.push_back(*it);
  return out;
}

} // namespace kiln::domain
