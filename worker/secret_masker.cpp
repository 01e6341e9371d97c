#include "worker/secret_masker.hpp"

#include <algorithm>

namespace kiln::worker {

namespace {
constexpr std::string_view stars = "***";
}

secret_masker::secret_masker(std::vector<std::string> values) {
  for (auto& v : values)
    if (v.size() >= min_length)
      values_.push_back(std::move(v));
  std::sort(values_.begin(), values_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  values_.erase(std::unique(values_.begin(), values_.end()), values_.end());
}

std::string secret_masker::mask(std::string_view text) const {
  std::string out;
  scan(text, out, false);
  return out;
}

// Masks `text` into `out`; with `hold`, stops where the rest could still be
// the beginning of a value and returns that position.
std::size_t secret_masker::scan(std::string_view text, std::string& out, bool hold) const {
  std::size_t i = 0;
  while (i < text.size()) {
    auto rest = text.substr(i);
    auto whole = std::find_if(values_.begin(), values_.end(),
                              [&](const std::string& v) { return rest.starts_with(v); });
    if (whole != values_.end()) {
      out += stars;
      i += whole->size();
      continue;
    }
    if (hold && std::any_of(values_.begin(), values_.end(), [&](const std::string& v) {
          return std::string_view{v}.starts_with(rest);
        }))
      return i;
    out += text[i++];
  }
  return i;
}

std::string secret_masker::feed(std::string_view chunk) {
  if (values_.empty())
    return std::string{chunk};
  held_.append(chunk);
  std::string out;
  held_.erase(0, scan(held_, out, true));
  return out;
}

std::string secret_masker::flush() {
  auto out = mask(held_);
  held_.clear();
  return out;
}

} // namespace kiln::worker
