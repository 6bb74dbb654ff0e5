#include "store/session_id.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <algorithm>
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

// The id's text of 32 bytes: 43 characters of base64url, unpadded.
std::string Encode(const std::uint8_t (&bytes)[32]) {
  std::uint8_t raw[33] = {};  // padded to a multiple of 3
  std::copy(bytes, bytes + 32, raw);
  std::string id;
  id.reserve(44);
  for (std::size_t i = 0; i < 33; i += 3) {
    std::uint32_t v = (raw[i] << 16) | (raw[i + 1] << 8) | raw[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) id.push_back(kBase64Url[(v >> shift) & 63]);
  }
  id.resize(kIdLength);  // 256 bits need 43 characters; the 44th encodes padding only
  return id;
}

// The 32 bytes of a well-formed id (Encode's inverse).
void Decode(std::string_view id, std::uint8_t (&bytes)[32]) {
  std::uint8_t raw[33] = {};
  std::string_view alphabet(kBase64Url);
  for (std::size_t i = 0, c = 0; i < 33; i += 3, c += 4) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k)
      v = (v << 6) | (c + k < id.size() ? static_cast<std::uint32_t>(alphabet.find(id[c + k])) : 0);
    raw[i] = static_cast<std::uint8_t>(v >> 16);
    raw[i + 1] = static_cast<std::uint8_t>(v >> 8);
    raw[i + 2] = static_cast<std::uint8_t>(v);
  }
  std::copy(raw, raw + 32, bytes);
}

// The key SealId uses for the holder of `old_id`.
IdDigest SealKey(std::string_view old_id) { return DigestOf("sessiond-grace" + std::string(old_id)); }

}  // namespace

std::string NewSessionId() {
  std::uint8_t raw[32] = {};
  std::size_t got = 0;
  while (got < 32) {
    ssize_t n = getrandom(raw + got, 32 - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  return Encode(raw);
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

SealedId SealId(std::string_view new_id, std::string_view old_id) {
  std::uint8_t bytes[32];
  Decode(new_id, bytes);
  const IdDigest key = SealKey(old_id);
  SealedId sealed;
  for (std::size_t i = 0; i < sealed.size(); ++i) sealed[i] = bytes[i] ^ key[i];
  return sealed;
}

std::string UnsealId(const SealedId& sealed, std::string_view old_id) {
  const IdDigest key = SealKey(old_id);
  std::uint8_t bytes[32];
  for (std::size_t i = 0; i < sealed.size(); ++i) bytes[i] = sealed[i] ^ key[i];
  return Encode(bytes);
}

IdDigest DigestOf(std::string_view id, std::string_view site) {
  if (site.empty()) return DigestOf(id);
  std::string text;
  text.reserve(site.size() + 1 + id.size());
  text.append(site).append(1, ':').append(id);
  return DigestOf(text);
}

}  // namespace sessiond
