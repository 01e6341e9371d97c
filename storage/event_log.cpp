#include "storage/event_log.hpp"

#include <future>

namespace kiln::storage {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::conflict: return "conflict";
    case errc::io: return "io";
    case errc::corrupt: return "corrupt";
    case errc::closed: return "closed";
    case errc::read_only: return "read_only";
    case errc::invalid_argument: return "invalid_argument";
  }
  return "unknown";
}

error make_error(errc e, std::string message) {
  return {std::string{to_string(e)}, std::move(message)};
}

result<append_receipt> event_log::append(append_request req) {
  std::promise<result<append_receipt>> done;
  auto f = done.get_future();
  append_async(std::move(req), [&done](result<append_receipt> r) { done.set_value(std::move(r)); });
  return f.get();
}

} // namespace kiln::storage
