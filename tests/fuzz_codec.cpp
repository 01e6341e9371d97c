// libFuzzer target for the record decoder (built with clang when
// KILN_FUZZ=ON): `fuzz_codec -max_total_time=60`.
#include "events/codec.hpp"
#include "events/json.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string buf(reinterpret_cast<const char*>(data), size);
  if (auto c = kiln::codec::decode_logged_commit(buf))
    (void) kiln::to_json_line(*c);
  (void) kiln::codec::decode_commit(buf);
  return 0;
}
