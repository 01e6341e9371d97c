#pragma once
// What every aggregate shares: a refusal is an error value whose code is the
// aggregate's own errc, spelled by its to_string.
#include "events/result.hpp"

#include <cctype>
#include <string>
#include <string_view>

namespace kiln::domain {

template <class Errc>
error refuse(Errc e, std::string message) {
  return {std::string{to_string(e)}, std::move(message)};
}

// Names that end up as file or path parts (secret keys, worker names): 1 to
// `max` letters, digits, '-', '_' and '.'.
inline bool plain_name(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

} // namespace kiln::domain
