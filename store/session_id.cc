#include "store/session_id.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <system_error>

namespace sessiond {
namespace {

constexpr char kBase64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}

}  // namespace

std::string NewSessionId() {
  std::uint8_t raw[33] = {};  // 32 random bytes, padded to a multiple of 3
  std::size_t got = 0;
  while (got < 32) {
    ssize_t n = getrandom(raw + got, 32 - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  std::string id;
  id.reserve(44);
  for (std::size_t i = 0; i < 33; i += 3) {
    std::uint32_t v = (raw[i] << 16) | (raw[i + 1] << 8) | raw[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) id.push_back(kBase64Url[(v >> shift) & 63]);
  }
  id.resize(kIdLength);  // 256 bits need 43 characters; the 44th encodes padding only
  return id;
}

bool IsWellFormedId(std::string_view text) {
  if (text.size() != kIdLength) return false;
  for (char c : text)
    if (!IsBase64UrlChar(c)) return false;
  // The last character carries 4 bits of data and 2 of padding, which must be 0.
  return (std::string_view(kBase64Url).find(text.back()) & 3) == 0;
}

IdDigest DigestOf(std::string_view id) {
  IdDigest out{};
  unsigned int len = 0;
  if (EVP_Digest(id.data(), id.size(), out.data(), &len, EVP_sha3_256(), nullptr) != 1 ||
      len != out.size())
    throw std::runtime_error("SHA3-256 digest failed");
  return out;
}

IdDigest DigestOf(std::string_view id, std::string_view site) {
  if (site.empty()) return DigestOf(id);
  std::string text;
  text.reserve(site.size() + 1 + id.size());
  text.append(site).append(1, ':').append(id);
  return DigestOf(text);
}

}  // namespace sessiond
