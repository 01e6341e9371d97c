#include "actors/time_zone.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

namespace kiln::domain {

namespace {

std::int64_t be(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | p[i];
  // Sign-extend from `bytes` wide.
  auto shift = 64 - 8 * bytes;
  return static_cast<std::int64_t>(v << shift) >> shift;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.front() == '/' || n.find("..") != std::string::npos)
    return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+';
  });
}

} // namespace

result<time_zone> time_zone::load(const std::string& name) {
  if (name == "UTC" || name == "Etc/UTC")
    return utc();
  auto unknown = [&](const std::string& why) {
    return error{"invalid_definition", "unknown time zone '" + name + "' (" + why + ")"};
  };
  if (!valid_name(name))
    return unknown("a zone is named like Europe/Berlin");
  std::ifstream in{"/usr/share/zoneinfo/" + name, std::ios::binary};
  if (!in)
    return unknown("not in /usr/share/zoneinfo; is tzdata installed?");
  std::string data{std::istreambuf_iterator<char>{in}, {}};
  auto bytes = reinterpret_cast<const unsigned char*>(data.data());
  // Header: "TZif", version, 15 reserved, six counts; the 64-bit data
  // (version 2 and later) follows the 32-bit block.
  auto counts = [&](std::size_t at, std::int64_t c[6]) {
    if (data.size() < at + 44 || data.compare(at, 4, "TZif") != 0)
      return false;
    for (int i = 0; i < 6; ++i)
      c[i] = be(bytes + at + 20 + 4 * i, 4);
    return true;
  };
  std::int64_t c[6];
  if (!counts(0, c) || data[4] < '2')
    return unknown("not a TZif version 2 file");
  auto v1_size = c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
  auto at = static_cast<std::size_t>(44 + v1_size);
  if (!counts(at, c))
    return unknown("a damaged TZif file");
  auto timecnt = c[3], typecnt = c[4];  // transitions, local time types
  at += 44;
  if (data.size() < at + timecnt * 9 + typecnt * 6 || typecnt == 0)
    return unknown("a damaged TZif file");
  time_zone z;
  z.name_ = name;
  std::vector<int> type_offsets;
  auto types = bytes + at + timecnt * 9;
  for (std::int64_t i = 0; i < typecnt; ++i)
    type_offsets.push_back(static_cast<int>(be(types + 6 * i, 4)));
  for (std::int64_t i = 0; i < timecnt; ++i) {
    auto index = bytes[at + timecnt * 8 + i];
    if (index >= typecnt)
      return unknown("a damaged TZif file");
    z.transitions_.push_back(be(bytes + at + 8 * i, 8));
    z.offsets_.push_back(type_offsets[index]);
  }
  z.initial_ = type_offsets[0];
  return z;
}

int time_zone::offset_at(std::int64_t unix_s) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  if (it == transitions_.begin())
    return initial_;
  return offsets_[static_cast<std::size_t>(it - transitions_.begin() - 1)];
}

} // namespace kiln::domain
