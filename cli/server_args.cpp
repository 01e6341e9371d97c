#include "cli/server_args.hpp"

#include "cli/args.hpp"

#include <cstdlib>
#include <fstream>

namespace kiln::cli {

client::client_options server_from(const args& a) {
  client::client_options o;
  o.base_url = a.get_or("server", "http://127.0.0.1:8080");
  while (o.base_url.ends_with('/'))
    o.base_url.pop_back();
  o.ca_file = a.get_or("ca-file", "");
  if (auto file = a.get("token-file")) {
    std::ifstream in{*file};
    if (!in || !std::getline(in, o.token) || o.token.empty())
      throw usage_error("cannot read a token from " + *file);
  } else if (const char* env = std::getenv("KILN_TOKEN")) {
    o.token = env;
  }
  return o;
}

} // namespace kiln::cli
