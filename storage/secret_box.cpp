#include "storage/secret_box.hpp"

#include "events/commit.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace kiln::storage {

namespace {

constexpr std::size_t key_size = 32;
constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;

using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");  // the system has no entropy: cannot go on
  return out;
}

auto u(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }
auto u(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

} // namespace

result<secret_box> secret_box::from_hex(std::string_view hex) {
  if (hex.size() != 2 * key_size)
    return error{"invalid_argument", "a secret key is 64 hex digits"};
  std::string key;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return error{"invalid_argument", "a secret key is 64 hex digits"};
    key.push_back(static_cast<char>(hi * 16 + lo));
  }
  return secret_box{std::move(key)};
}

result<secret_box> secret_box::load_or_create(const std::filesystem::path& key_file) {
  if (!std::filesystem::exists(key_file)) {
    auto key = random_bytes(key_size);
    int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
      return error{"io", "cannot create " + key_file.string() + ": " + std::strerror(errno)};
    bool written = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size())
                   && ::fsync(fd) == 0;
    ::close(fd);
    if (!written)
      return error{"io", "cannot write " + key_file.string()};
    return secret_box{std::move(key)};
  }
  std::ifstream in{key_file, std::ios::binary};
  std::stringstream buf;
  buf << in.rdbuf();
  auto key = buf.str();
  if (!in || key.size() != key_size)
    return error{"invalid_argument", key_file.string() + " is not a 32-byte key"};
  return secret_box{std::move(key)};
}

std::string secret_box::seal(std::string_view clear) const {
  auto nonce = random_bytes(nonce_size);
  std::string out = nonce;
  out.resize(nonce_size + clear.size() + tag_size);
  cipher_ctx ctx{EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free};
  int len = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(std::string_view{key_}), u(nonce));
  EVP_EncryptUpdate(ctx.get(), u(out) + nonce_size, &len, u(clear), static_cast<int>(clear.size()));
  EVP_EncryptFinal_ex(ctx.get(), u(out) + nonce_size + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_size,
                      u(out) + nonce_size + clear.size());
  return out;
}

result<std::string> secret_box::open(std::string_view sealed) const {
  if (sealed.size() < nonce_size + tag_size)
    return error{"corrupt", "sealed secret too short"};
  auto body = sealed.substr(nonce_size, sealed.size() - nonce_size - tag_size);
  std::string tag{sealed.substr(sealed.size() - tag_size)};
  std::string out(body.size(), '\0');
  cipher_ctx ctx{EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free};
  int len = 0;
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(std::string_view{key_}), u(sealed));
  EVP_DecryptUpdate(ctx.get(), u(out), &len, u(body), static_cast<int>(body.size()));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_size, tag.data());
  if (EVP_DecryptFinal_ex(ctx.get(), u(out) + len, &len) != 1)
    return error{"corrupt", "sealed secret does not open with this key"};
  return out;
}

std::string secret_box::derive(std::string_view label) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), u(label), label.size(), md, &len);
  return to_hex(std::string_view{reinterpret_cast<const char*>(md), len});
}

} // namespace kiln::storage
