#include "log/redact.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>

namespace sessiond {
namespace {

bool Space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool Alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Where a password is spelt in `text`: [begin, end), and how.
struct Span {
  std::size_t begin, end;
  enum Kind { kUserInfo, kQuery, kKeyword } kind;
};

// Every password `text` spells, in order, none overlapping.
std::vector<Span> PasswordSpans(std::string_view text) {
  std::vector<Span> spans;
  // scheme://user:PASSWORD@host: the user info, up to the last @ before the
  // path (or where the URI ends in free text). Not the query or fragment:
  // libpq looks for the @ up to the first / only, so "pa#ss" and "pa?ss"
  // are passwords to it, and masking a little too much is harmless.
  for (std::size_t pos = text.find("://"); pos != std::string_view::npos; pos = text.find("://", pos + 3)) {
    std::size_t start = pos + 3, end = start;
    while (end < text.size() && !Space(text[end]) && text[end] != '/') ++end;
    std::size_t at = text.substr(start, end - start).rfind('@');
    if (at == std::string_view::npos) continue;
    at += start;
    std::size_t colon = text.find(':', start);
    if (colon < at && colon + 1 < at) spans.push_back({colon + 1, at, Span::kUserInfo});
  }
  // password=VALUE, PGPASSWORD=VALUE: a key of its own (not mypassword=),
  // any case, spaces around the = as libpq allows them.
  constexpr std::string_view kKey = "password";
  for (std::size_t pos = 0; pos + kKey.size() <= text.size(); ++pos) {
    if (!IEquals(text.substr(pos, kKey.size()), kKey)) continue;
    std::size_t key = pos >= 2 && IEquals(text.substr(pos - 2, 2), "pg") ? pos - 2 : pos;
    if (key > 0 && Alnum(text[key - 1])) continue;
    const bool query = key > 0 && (text[key - 1] == '?' || text[key - 1] == '&');
    std::size_t i = pos + kKey.size();
    while (!query && i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i == text.size() || text[i] != '=') continue;
    ++i;
    while (!query && i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    std::size_t end = i;
    if (!query && end < text.size() && (text[end] == '\'' || text[end] == '"')) {
      // A quoted value ('se cr\'et', as libpq's keywords; "a b", as an
      // environment file's) ends at its closing quote.
      const char quote = text[end];
      for (++end; end < text.size() && text[end] != quote; ++end)
        if (text[end] == '\\') ++end;
      end = std::min(end + 1, text.size());
    } else {
      // A query parameter ends at the next one, the fragment or the end of
      // the URI; a keyword's value at a space (it may hold & or #).
      while (end < text.size() && !Space(text[end]) && !(query && std::strchr("&#\"", text[end]))) ++end;
    }
    // Already masked (a settings line of masked values, logged).
    const std::size_t value = i + (end > i && (text[i] == '\'' || text[i] == '"'));
    if (end == i || text.substr(value, kMasked.size()) == kMasked) continue;
    // What the URI rule above took, or a later word of this value, is not
    // another password.
    if (std::any_of(spans.begin(), spans.end(), [&](const Span& s) { return s.begin < end && i < s.end; }))
      continue;
    spans.push_back({i, end, query ? Span::kQuery : Span::kKeyword});
    pos = end - 1;
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  return spans;
}

std::string PercentDecoded(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The registered secrets, longest first, so one that contains another is
// masked whole. Never destroyed: a thread may log while the process exits.
struct Secrets {
  std::shared_mutex m;
  std::vector<std::string> all;
};
Secrets& Registered() {
  static Secrets* const secrets = new Secrets;
  return *secrets;
}

}  // namespace

std::string Redact(std::string_view text) {
  std::string out(text);
  {
    Secrets& s = Registered();
    std::shared_lock lock(s.m);
    for (const std::string& secret : s.all)
      for (std::size_t pos = 0; (pos = out.find(secret, pos)) != std::string::npos; pos += kMasked.size())
        out.replace(pos, secret.size(), kMasked);
  }
  std::vector<Span> spans = PasswordSpans(out);
  for (auto it = spans.rbegin(); it != spans.rend(); ++it)
    if (std::string_view(out).substr(it->begin, it->end - it->begin) != kMasked)
      out.replace(it->begin, it->end - it->begin, kMasked);
  return out;
}

std::string RedactSetting(std::string_view key, std::string_view value) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* name : {"password", "passwd", "secret", "token"})
    if (k.find(name) != std::string::npos) return "********";
  return Redact(value);
}

void AddSecret(std::string_view secret) {
  if (secret.empty()) return;
  Secrets& s = Registered();
  std::unique_lock lock(s.m);
  if (std::find(s.all.begin(), s.all.end(), secret) != s.all.end()) return;
  s.all.emplace_back(secret);
  std::stable_sort(s.all.begin(), s.all.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::vector<std::string> PasswordsIn(std::string_view db) {
  std::vector<std::string> found;
  for (const Span& span : PasswordSpans(db)) {
    std::string_view v = db.substr(span.begin, span.end - span.begin);
    std::string value(v);
    if (span.kind == Span::kKeyword && v.size() >= 2 && (v.front() == '\'' || v.front() == '"')) {
      value.clear();  // as libpq reads it: without the quotes and escapes
      for (std::size_t i = 1; i + 1 < v.size(); ++i) value += v[i] == '\\' && i + 2 < v.size() ? v[++i] : v[i];
      found.emplace_back(v);  // and as written, for a message that quotes it
    }
    found.push_back(value);
    std::string decoded = PercentDecoded(value);
    if (decoded != value) found.push_back(decoded);
  }
  return found;
}

void AddDatabaseSecrets(std::string_view db) {
  for (const std::string& p : PasswordsIn(db)) AddSecret(p);
  if (const char* env = std::getenv("PGPASSWORD")) AddSecret(env);
}

bool HideSecretsInArgv(int argc, char** argv) {
  std::vector<std::string> shown;
  bool any = false;
  for (int i = 1; i < argc; ++i) {
    shown.push_back(Redact(argv[i]));
    any = any || shown.back() != argv[i];
  }
  if (!any) return false;
  // The kernel lays the arguments out one after the other, and ps shows
  // that area: write the masked ones into it, the rest of it NUL (a masked
  // password may be longer than the password).
  bool contiguous = true;
  std::size_t room = 0, need = 0;
  for (int i = 1; i < argc; ++i) {
    room += std::strlen(argv[i]) + 1;
    need += shown[i - 1].size() + 1;
    if (i + 1 < argc && argv[i + 1] != argv[i] + std::strlen(argv[i]) + 1) contiguous = false;
  }
  if (contiguous && need <= room) {
    char* p = argv[1];
    char* const end = p + room;
    for (int i = 1; i < argc; ++i) {
      std::memcpy(p, shown[i - 1].c_str(), shown[i - 1].size() + 1);
      argv[i] = p;
      p += shown[i - 1].size() + 1;
    }
    std::memset(p, 0, static_cast<std::size_t>(end - p));
    return true;
  }
  // Else each in its own place, cut to its length.
  for (int i = 1; i < argc; ++i) {
    std::size_t len = std::strlen(argv[i]);
    if (shown[i - 1] == argv[i]) continue;
    std::size_t n = std::min(len, shown[i - 1].size());
    std::memcpy(argv[i], shown[i - 1].data(), n);
    std::memset(argv[i] + n, 0, len - n);
  }
  return true;
}

}  // namespace sessiond
