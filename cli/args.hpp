#pragma once
// Command-line arguments: `--key value`, `--key=value`, `--flag`, positionals.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::cli {

// Thrown for a bad command line; main prints it and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class args {
 public:
  // `flags` are the options that take no value.
  args(int argc, char** argv, int first, std::set<std::string> flags = {});

  bool has(const std::string& key) const { return options_.count(key) > 0; }
  // A flag: `--key` or `--key=true` is on, `--key=false` or none off.
  bool flag(const std::string& key) const;
  std::optional<std::string> get(const std::string& key) const;
  std::string get_or(const std::string& key, std::string fallback) const;
  std::uint64_t get_u64(const std::string& key, std::uint64_t fallback) const;
  // "a, b,c" -> {"a", "b", "c"}; empty parts dropped.
  std::vector<std::string> get_list(const std::string& key, std::string fallback = {}) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Fails with a usage_error naming the first option not in `known`.
  void allow_only(const std::set<std::string>& known) const;
  // Sets `key` unless the command line gave it (a config file's values).
  void set_default(const std::string& key, std::string value) {
    options_.emplace(key, std::move(value));
  }

 private:
  std::map<std::string, std::string> options_;
  std::vector<std::string> positionals_;
};

} // namespace kiln::cli
