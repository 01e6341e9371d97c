#pragma once
// A fresh directory under the system temp dir, removed with its contents.
#include <filesystem>
#include <string>

namespace kiln::test {

class temp_dir {
 public:
  explicit temp_dir(const std::string& tag = "kiln-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

} // namespace kiln::test
