#pragma once
// Test results a run produces: JUnit XML files in $ARCHIVE (junit.xml*),
// and `test-grepping` patterns over the console (RE2, which reads Python's
// `(?P<name>…)` groups).
#include "events/result.hpp"
#include "worker/run_definition.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::worker {

struct test_case {
  std::string name;
  std::string status;  // PASSED, FAILED or SKIPPED
  std::uint64_t duration_ms = 0;
  std::string message;
};

struct test_suite {
  std::string name;
  std::vector<test_case> results;
  bool failed() const;
};

// One suite per file; a malformed file is an error naming its line and column.
result<test_suite> parse_junit(const std::filesystem::path& file);

// Feeds console lines, collects results: `test-pattern` names the suite
// that the following `result-pattern` matches belong to (see line()).
class test_grepper {
 public:
  // An error when a pattern does not compile (RE2's message).
  static result<std::unique_ptr<test_grepper>> make(const grepping_spec& spec);
  ~test_grepper();

  void feed(std::string_view bytes);  // any cut; lines are split here
  std::vector<test_suite> finish();

 private:
  struct impl;
  explicit test_grepper(std::unique_ptr<impl> p);
  void line(std::string_view l);
  std::unique_ptr<impl> impl_;
};

} // namespace kiln::worker
