#pragma once
// A small expected-style result for module boundaries: a value or an error.
// Errors are values across modules and the bus; exceptions stay inside modules.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

// `code` is stable and machine-readable (each module's `errc` through
// `to_string`); the gateway maps codes to HTTP statuses in one table.
struct error {
  std::string code;
  std::string message;
};

template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(kiln::error e) : v_(std::move(e)) {}

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool has_value() const noexcept { return v_.index() == 0; }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const kiln::error& error() const { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, kiln::error> v_;
};

// For operations whose success carries nothing.
struct ok_t {};
inline constexpr ok_t ok{};
using status_result = result<ok_t>;

} // namespace kiln
