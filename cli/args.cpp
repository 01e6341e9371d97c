#include "cli/args.hpp"

namespace kiln::cli {

args::args(int argc, char** argv, int first, std::set<std::string> flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (!a.starts_with("--") || a == "--") {
      positionals_.push_back(a);
      continue;
    }
    auto key = a.substr(2);
    if (auto eq = key.find('='); eq != std::string::npos) {
      options_[key.substr(0, eq)] = key.substr(eq + 1);
    } else if (flags.count(key)) {
      options_[key] = "true";
    } else if (i + 1 < argc) {
      options_[key] = argv[++i];
    } else {
      throw usage_error("--" + key + " needs a value");
    }
  }
}

std::optional<std::string> args::get(const std::string& key) const {
  auto it = options_.find(key);
  if (it == options_.end())
    return std::nullopt;
  return it->second;
}

std::string args::get_or(const std::string& key, std::string fallback) const {
  return get(key).value_or(std::move(fallback));
}

std::uint64_t args::get_u64(const std::string& key, std::uint64_t fallback) const {
  auto v = get(key);
  if (!v)
    return fallback;
  try {
    std::size_t used = 0;
    auto n = std::stoull(*v, &used);
    if (used != v->size())
      throw std::invalid_argument(*v);
    return n;
  } catch (const std::exception&) {
    throw usage_error("--" + key + " wants a whole number, not '" + *v + "'");
  }
}

std::vector<std::string> args::get_list(const std::string& key, std::string fallback) const {
  auto text = get_or(key, std::move(fallback));
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = std::min(text.find(',', start), text.size());
    auto part = text.substr(start, comma - start);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (!part.empty())
      out.push_back(part);
    start = comma + 1;
  }
  return out;
}

bool args::flag(const std::string& key) const {
  auto v = get(key);
  if (!v || *v == "false")
    return false;
  if (*v != "true")
    throw usage_error("--" + key + " is true or false, not '" + *v + "'");
  return true;
}

void args::allow_only(const std::set<std::string>& known) const {
  for (auto& [k, v] : options_)
    if (!known.count(k))
      throw usage_error("unknown option --" + k);
}

} // namespace kiln::cli
