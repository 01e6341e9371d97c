#include "support/temp_dir.hpp"

#include <cstdlib>
#include <stdexcept>

namespace kiln::test {

temp_dir::temp_dir(const std::string& tag) {
  // mkdtemp replaces the trailing XXXXXX of its template with a unique name.
  auto tmpl = (std::filesystem::temp_directory_path() / (tag + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

} // namespace kiln::test
