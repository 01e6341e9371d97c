#include "storage/hash_chain.hpp"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace kiln::storage {

namespace {

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Fetching the algorithm once avoids OpenSSL 3's per-call provider lookup.
const EVP_MD* sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

} // namespace

digest chain_hash(const digest& prev, global_seq seq, std::string_view commit_bytes) {
  thread_local std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
  std::uint8_t seq_be[8];
  for (int i = 0; i < 8; ++i)
    seq_be[i] = static_cast<std::uint8_t>(seq.value >> (56 - 8 * i));
  digest out{};
  unsigned int len = 0;
  if (!sha256() || EVP_DigestInit_ex(ctx.get(), sha256(), nullptr) != 1
      || EVP_DigestUpdate(ctx.get(), prev.data(), prev.size()) != 1
      || EVP_DigestUpdate(ctx.get(), seq_be, sizeof seq_be) != 1
      || EVP_DigestUpdate(ctx.get(), commit_bytes.data(), commit_bytes.size()) != 1
      || EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size())
    throw std::runtime_error("OpenSSL SHA-256 failed"); // a broken invariant, not an input error
  return out;
}

} // namespace kiln::storage
