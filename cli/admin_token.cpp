#include "cli/admin_token.hpp"

#include "actors/core.hpp"
#include "actors/credentials.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

namespace kiln::cli {

namespace {

// Written to a temporary file created 0600, synced, then renamed: the token
// is never readable by others, not even for a moment.
status_result write_private(const std::filesystem::path& file, const std::string& text) {
  auto tmp = file;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return error{"io", "cannot create " + tmp.string()};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size())
            && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0)
    return error{"io", "cannot write " + file.string()};
  return kiln::ok;
}

} // namespace

status_result install_admin_token(core::core& c, const std::filesystem::path& file, bool shared) {
  std::string token;
  if (std::ifstream in{file}; in)
    std::getline(in, token);
  if (token.rfind("kt.admin.", 0) != 0) {
    if (shared) {
      auto tokens = c.read(core::list_tokens{});
      if (!tokens)
        return tokens.error();
      if (auto* list = std::get_if<std::vector<domain::token_summary>>(&*tokens))
        for (auto& t : *list)
          if (t.id == "admin")
            return error{"conflict", "the cluster has an admin token and " + file.string()
                                       + " is missing: copy admin.token from another core's "
                                         "data dir"};
    }
    token = domain::make_api_token("admin", domain::random_secret());
    if (auto w = write_private(file, token + "\n"); !w)
      return w;
  }
  auto r = c.call(core::issue_token{"admin", "the node's admin token (admin.token)", "admin", "",
                                    token},
                  {"system", ""});
  if (!r)
    return r.error();
  return kiln::ok;
}

} // namespace kiln::cli
