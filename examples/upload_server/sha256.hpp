// sha256.hpp - incremental SHA-256 over OpenSSL 3's EVP interface.
//
// The server hashes each upload while it streams to disk, so the digest costs
// no second pass over the file. EVP (not the deprecated SHA256_Init family) is
// OpenSSL 3's supported API; the context is owned RAII-style and the class is
// move-only because an EVP_MD_CTX cannot be shared.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace upload_server {

class Sha256 {
 public:
  /// Throws std::bad_alloc if OpenSSL cannot allocate the context, and
  /// std::runtime_error if it offers no SHA-256 (a misconfigured provider).
  Sha256() : context_{EVP_MD_CTX_new()} {
    if (context_ == nullptr) throw std::bad_alloc{};
    if (EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) != 1) {
      EVP_MD_CTX_free(context_);
      throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
    }
  }

  Sha256(Sha256&& other) noexcept : context_{std::exchange(other.context_, nullptr)} {}
  Sha256& operator=(Sha256&& other) noexcept {
    std::swap(context_, other.context_);
    return *this;
  }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256() { EVP_MD_CTX_free(context_); }

  /// Hashes `data` after everything before it. For SHA-256 the EVP update only
  /// fails on a null or finished context, which this class never passes, so
  /// its result is not checked. A moved-from object must not be updated.
  void update(std::string_view data) noexcept {
    (void)EVP_DigestUpdate(context_, data.data(), data.size());
  }

  /// The digest of everything updated so far, as 64 lowercase hex digits. The
  /// object then starts over, as if newly constructed.
  [[nodiscard]] std::string hex_digest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context_, digest.data(), &length) != 1 ||
        EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) != 1) {
      throw std::runtime_error("OpenSSL: cannot finish SHA-256");
    }
    static constexpr std::string_view hex_digits = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
      hex += hex_digits[digest[i] >> 4];
      hex += hex_digits[digest[i] & 0xf];
    }
    return hex;
  }

 private:
  EVP_MD_CTX* context_;
};

}  // namespace upload_server
