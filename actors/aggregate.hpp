#pragma once
// What every aggregate shares: a refusal is an error value whose code is the
// aggregate's own errc, spelled by its to_string.
#include "events/result.hpp"

#include <string>

namespace kiln::domain {

template <class Errc>
error refuse(Errc e, std::string message) {
  return {std::string{to_string(e)}, std::move(message)};
}

} // namespace kiln::domain
