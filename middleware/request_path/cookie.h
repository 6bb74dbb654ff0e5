// The session cookie: finding it in a Cookie header and writing Set-Cookie.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

// The value of the first cookie called `name` in a Cookie request header
// ("a=1; sid=xyz; b=2", or "a=1, sid=xyz" as Apache joins two Cookie
// headers), or nullopt when there is none. Surrounding quotes are removed.
// Other cookies are not looked at beyond their names.
std::optional<std::string_view> FindCookie(std::string_view header, std::string_view name);
// Every value of the cookie `name`, in the header's order: a browser sends
// several when a parent domain or another path set one of the same name.
std::vector<std::string_view> FindCookies(std::string_view header, std::string_view name);

// The values of every cookie in `header`, whatever its name, in order.
std::vector<std::string_view> CookieValues(std::string_view header);

// Whether `name` can be a cookie's name: a token of RFC 6265 (letters,
// digits, !#$%&'*+-.^_`|~), not empty.
bool IsCookieName(std::string_view name);

struct CookieAttributes {
  std::string name = "sid";
  bool secure = false;       // add Secure
  std::string same_site = "Lax";  // Strict, Lax or None ("None" needs Secure in browsers)
  std::int64_t max_age = 0;  // seconds; 0: a browser-session cookie (no Max-Age)
};

// Set-Cookie value that gives the client `id`: Path=/; HttpOnly; SameSite; ...
std::string SessionCookie(std::string_view id, const CookieAttributes& a);

// Set-Cookie value that makes the client drop its session cookie.
std::string ExpiredCookie(const CookieAttributes& a);

}  // namespace sessiond
