#pragma once
// `--config FILE`: the server and worker commands' options in a YAML file,
// one key per long option (`s3-endpoint: http://…`, `public-read: true`,
// lists as sequences). An option given on the command line wins over the
// file; a key no option has is refused with its line and column.
#include <set>
#include <string>

namespace kiln::cli {

class args;

// Reads the file `--config` names, if any, into `a`'s defaults. `known` are
// the command's options, `flags` those that take no value. Throws
// usage_error naming FILE:LINE:COLUMN for a bad file.
void load_config_file(args& a, const std::set<std::string>& known,
                      const std::set<std::string>& flags = {});

} // namespace kiln::cli
