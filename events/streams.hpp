#pragma once
// Stream names: one stream per aggregate instance (DESIGN.md vocabulary).
#include "events/ids.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::streams {

inline stream_id project(std::string_view name) { return {"project/" + std::string{name}}; }
inline stream_id build(std::string_view project, std::uint32_t number) {
  return {"build/" + std::string{project} + "/" + std::to_string(number)};
}
inline stream_id run(std::string_view project, std::uint32_t number, std::string_view run) {
  return {"run/" + std::string{project} + "/" + std::to_string(number) + "/" + std::string{run}};
}
inline stream_id worker(std::string_view name) { return {"worker/" + std::string{name}}; }
inline stream_id token(std::string_view id) { return {"token/" + std::string{id}}; }

// "project", "build", "run", "worker", "token" (or whatever precedes the first '/').
inline std::string_view kind_of(const stream_id& s) {
  std::string_view v = s.value;
  return v.substr(0, v.find('/'));
}

} // namespace kiln::streams
