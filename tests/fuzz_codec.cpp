// libFuzzer target for the record and commit decoders (clang only):
//   cmake -DCMAKE_CXX_COMPILER=clang++ -DKILN_FUZZ=ON … && fuzz_codec -max_total_time=60
// The first input byte picks a mode: even, the rest is decoded as it is;
// odd, the rest is (16-bit position, byte) triples written into a valid record, so
// the fuzzer reaches the decoders' deep paths instead of stopping at the
// file identifier.
#include "events/codec.hpp"
#include "events/json.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

const std::string& valid_record() {
  static const std::string rec = [] {
    kiln::commit c{{"run/app/1/unit-test"}, {3}, {1, "admin", "cmd", "corr"},
                   {kiln::run_completed{kiln::status::failed, 2, "boom"},
                    kiln::build_created{"app", 1, "ci", {{"K", "V"}}, "r", "s", "why", 1, {"a"}},
                    kiln::run_tests_reported{"u", {{"t", kiln::status::passed, 1, "m"}}}}};
    return kiln::codec::encode_record(kiln::global_seq{7}, {}, {}, kiln::codec::encode_commit(c));
  }();
  return rec;
}

void decode(const std::string& buf) {
  if (auto c = kiln::codec::decode_logged_commit(buf))
    (void) kiln::to_json_line(*c);
  (void) kiln::codec::decode_commit(buf);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  if (data[0] % 2 == 0) {
    decode(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
    return 0;
  }
  auto buf = valid_record();
  for (std::size_t i = 1; i + 2 < size; i += 3)
    buf[(data[i] | (data[i + 1] << 8)) % buf.size()] = static_cast<char>(data[i + 2]);
  decode(buf);
  return 0;
}
