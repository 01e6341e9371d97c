#include "events/sha256.hpp"

#include "events/commit.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <vector>

namespace kiln {

struct sha256::impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string digest;  // once finished
  ~impl() { EVP_MD_CTX_free(ctx); }
};

sha256::sha256() : impl_(std::make_unique<impl>()) {
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}
sha256::~sha256() = default;

void sha256::update(std::string_view bytes) {
  EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size());
}

std::string sha256::hex() {
  if (impl_->digest.empty()) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(impl_->ctx, md, &len);
    impl_->digest = to_hex(std::string_view{reinterpret_cast<const char*>(md), len});
  }
  return impl_->digest;
}

std::string sha256_hex(std::string_view bytes) {
  sha256 h;
  h.update(bytes);
  return h.hex();
}

std::string sha256_file_hex(const std::filesystem::path& file, std::uint64_t* size) {
  std::ifstream in{file, std::ios::binary};
  sha256 h;
  std::vector<char> buf(1 << 16);
  std::uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = static_cast<std::size_t>(in.gcount());
    total += n;
    h.update({buf.data(), n});
  }
  if (size)
    *size = total;
  return h.hex();
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return {reinterpret_cast<const char*>(out), len};
}

} // namespace kiln
