#include "commands/output.h"

#include <cstdio>
#include <ctime>

namespace sessiond {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// The code point of the UTF-8 sequence at `s[i]` and its length, or -1 (and
// length 1) when the byte there does not start a valid sequence.
std::pair<long, std::size_t> Decode(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return {c, 1};
  std::size_t n;
  long cp;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return {-1, 1};
  if (i + n > s.size()) return {-1, 1};
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return {-1, 1};
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return {-1, 1};
  return {cp, n};
}

bool IsBidiControl(long cp) {
  return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

// Characters a terminal would act on or hide rather than show, beyond the
// C0 controls: the C1 controls and the bidirectional ones. Both the quoted
// text and JSON spell them as \u escapes, each in its own syntax.
bool IsHidden(long cp) { return (cp >= 0x80 && cp <= 0x9f) || IsBidiControl(cp); }

// The backslash escape both the quoted text and JSON give a quote, a
// backslash and the three common white-space controls; nullptr for others.
const char* ShortEscape(long cp) {
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: return nullptr;
  }
}

void AppendHexByte(std::string& out, unsigned char c) {
  out += kHex[c >> 4];
  out += kHex[c & 15];
}

}  // namespace

std::string IsoTime(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char buf[32];
  if (!::gmtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return std::to_string(unix_seconds);
  return buf;
}

bool IsUtf8(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    auto [cp, n] = Decode(bytes, i);
    if (cp < 0) return false;
    i += n;
  }
  return true;
}

std::string Quoted(std::string_view s) { return '"' + Escaped(s) + '"'; }

std::string Escaped(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    auto [cp, n] = Decode(s, i);
    auto c = static_cast<unsigned char>(s[i]);
    if (const char* e = ShortEscape(cp)) {
      out += e;
    } else if (cp < 0x20 || cp == 0x7f) {  // invalid UTF-8 (cp < 0) too
      out += "\\x";
      AppendHexByte(out, c);
    } else if (IsHidden(cp)) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "\\u{%04lx}", cp);
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string KeyText(std::string_view key) {
  bool plain = !key.empty();
  for (char c : key)
    plain = plain && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == ':' || c == '-');
  return plain ? std::string(key) : Quoted(key);
}

std::string HexBytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) AppendHexByte(out, static_cast<unsigned char>(c));
  return out;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    auto [cp, n] = Decode(s, i);
    if (cp < 0) cp = static_cast<unsigned char>(s[i]);  // not UTF-8: the byte as a code point
    if (const char* e = ShortEscape(cp)) {
      out += e;
    } else if (cp < 0x20 || cp == 0x7f || IsHidden(cp) || (cp >= 0x80 && n == 1)) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "\\u%04lx", cp);
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out + '"';
}

std::string JsonBytes(std::string_view name, std::string_view bytes) {
  if (IsUtf8(bytes)) return JsonString(name) + ": " + JsonString(bytes);
  return JsonString(std::string(name) + "_hex") + ": \"" + HexBytes(bytes) + '"';
}

}  // namespace sessiond
