#include "middleware/request_path/cookie.h"

namespace sessiond {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Attributes(const CookieAttributes& a) {
  std::string out = "; Path=/; HttpOnly";
  if (!a.same_site.empty()) out += "; SameSite=" + a.same_site;
  if (a.secure) out += "; Secure";
  return out;
}

}  // namespace

std::optional<std::string_view> FindCookie(std::string_view header, std::string_view name) {
  std::vector<std::string_view> all = FindCookies(header, name);
  if (all.empty()) return std::nullopt;
  return all.front();
}

bool IsCookieName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

namespace {

// The values of the cookies named `name` in `header`; every cookie's when
// `name` is null.
std::vector<std::string_view> Values(std::string_view header, const std::string_view* name) {
  std::vector<std::string_view> found;
  while (!header.empty()) {
    // ';' separates cookies; so does ',', which no cookie value may hold
    // (RFC 6265): Apache joins repeated Cookie headers with ", ".
    std::size_t semi = header.find_first_of(";,");
    std::string_view pair = Trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || (name && Trim(pair.substr(0, eq)) != *name)) continue;
    std::string_view value = Trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    found.push_back(value);
  }
  return found;
}

}  // namespace

std::vector<std::string_view> FindCookies(std::string_view header, std::string_view name) {
  return Values(header, &name);
}

std::vector<std::string_view> CookieValues(std::string_view header) { return Values(header, nullptr); }

std::string SessionCookie(std::string_view id, const CookieAttributes& a) {
  std::string out = a.name + "=" + std::string(id) + Attributes(a);
  if (a.max_age > 0) out += "; Max-Age=" + std::to_string(a.max_age);
  return out;
}

std::string ExpiredCookie(const CookieAttributes& a) {
  return a.name + "=" + Attributes(a) + "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
}

}  // namespace sessiond
