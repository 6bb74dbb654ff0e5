#include "store/admin.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace sessiond {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr std::size_t kListedCandidates = 10;  // candidates named for an ambiguous prefix

}  // namespace

std::string HexOf(const IdDigest& digest) {
  std::string out;
  out.reserve(digest.size() * 2);
  for (std::uint8_t b : digest) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 15];
  }
  return out;
}

std::string TagOf(const IdDigest& digest) { return HexOf(digest).substr(0, 8); }

DigestRange PrefixRange(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 64 ||
      !std::all_of(prefix.begin(), prefix.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    throw std::invalid_argument("a digest prefix is 1 to 64 lowercase hex digits");
  std::vector<int> low;
  for (char c : prefix) low.push_back(c <= '9' ? c - '0' : c - 'a' + 10);
  std::vector<int> high = low;
  auto at = high.rbegin();
  while (at != high.rend() && *at == 15) *at++ = 0;
  DigestRange r;
  r.bounded = at != high.rend();
  if (r.bounded) ++*at;
  // Hex digits as bytes; an odd last digit fills the high half of a byte.
  auto pack = [](const std::vector<int>& nibbles) {
    std::string out((nibbles.size() + 1) / 2, '\0');
    for (std::size_t i = 0; i < nibbles.size(); ++i)
      out[i / 2] = static_cast<char>(out[i / 2] | (nibbles[i] << (i % 2 ? 0 : 4)));
    return out;
  };
  r.low = pack(low);
  r.high = pack(high);
  return r;
}

SessionRef FindSession(SessionAdmin& admin, std::string_view text) {
  SessionRef ref;
  bool hex = text.size() >= kMinPrefixDigits && text.size() <= 64 &&
             std::all_of(text.begin(), text.end(), IsHexDigit);
  if (IsWellFormedId(text)) {
    IdDigest d = DigestOf(text, admin.site());
    if (!admin.FindByPrefix(HexOf(d), 1).empty()) {
      ref.kind = SessionRef::Kind::Found;
      ref.digest = d;
      return ref;
    }
    // 43 hex digits are also a well-formed id: try them as a prefix too.
    if (!hex) return ref;
  } else if (!hex) {
    ref.kind = SessionRef::Kind::Malformed;
    return ref;
  }
  std::string prefix;
  for (char c : text) prefix += Lower(c);
  std::vector<IdDigest> found = admin.FindByPrefix(prefix, kListedCandidates + 1);
  if (found.empty()) return ref;
  if (found.size() == 1) {
    ref.kind = SessionRef::Kind::Found;
    ref.digest = found.front();
    return ref;
  }
  ref.kind = SessionRef::Kind::Ambiguous;
  ref.more = found.size() > kListedCandidates;
  found.resize(std::min(found.size(), kListedCandidates));
  ref.candidates = std::move(found);
  return ref;
}

}  // namespace sessiond
