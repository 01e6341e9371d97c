#include "cli/config_file.hpp"

#include "cli/args.hpp"

#include <yaml-cpp/yaml.h>

namespace kiln::cli {

namespace {

std::string where(const std::string& file, const YAML::Mark& m) {
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

} // namespace

void load_config_file(args& a, const std::set<std::string>& known,
                      const std::set<std::string>& flags) {
  auto file = a.get("config");
  if (!file)
    return;
  YAML::Node root;
  try {
    root = YAML::LoadFile(*file);
  } catch (const YAML::BadFile&) {
    throw usage_error("--config: cannot read " + *file);
  } catch (const YAML::Exception& e) {
    throw usage_error("--config: " + where(*file, e.mark) + ": " + e.msg);
  }
  if (root.IsNull())
    return;  // an empty file
  if (!root.IsMap())
    throw usage_error("--config: " + where(*file, root.Mark())
                      + ": wants a mapping of option names to values");
  for (auto item : root) {
    auto key = item.first.as<std::string>();
    auto& value = item.second;
    auto at = where(*file, item.first.Mark());
    if (!known.count(key) || key == "config")
      throw usage_error("--config: " + at + ": no option --" + key + " here");
    std::string text;
    if (value.IsScalar()) {
      text = value.Scalar();
    } else if (value.IsSequence()) {
      for (auto part : value) {
        if (!part.IsScalar())
          throw usage_error("--config: " + where(*file, part.Mark()) + ": " + key
                            + " wants a list of plain values");
        text += (text.empty() ? "" : ",") + part.Scalar();
      }
    } else {
      throw usage_error("--config: " + at + ": " + key + " wants a value or a list");
    }
    if (flags.count(key)) {
      if (text != "true" && text != "false")
        throw usage_error("--config: " + where(*file, value.Mark()) + ": " + key
                          + " is true or false, not '" + text + "'");
      if (text == "false")
        continue;
    }
    a.set_default(key, text);
  }
}

} // namespace kiln::cli
