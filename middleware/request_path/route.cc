#include "middleware/request_path/route.h"

#include <limits>

#include "middleware/base/http.h"
#include "middleware/request_path/cookie.h"

namespace sessiond {
namespace {

// The parameter's value, or nullopt when it was not sent or sent empty.
std::optional<std::string_view> Given(const Request& request, std::string_view name) {
  std::optional<std::string_view> v = request.Param(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

[[noreturn]] void Refuse(std::string_view name, std::string_view value, const std::string& accepted) {
  // The value is the operator's own configuration, but a site name or cookie
  // name is bounded before it is quoted so a mistake cannot flood the log.
  std::string shown(value.substr(0, 64));
  if (value.size() > 64) shown += "...";
  throw HttpError(500, std::string(name) + " '" + shown + "' is not understood: " + accepted +
                           " (fix the web server's fastcgi_param or SetEnv)");
}

bool IsSiteName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

std::int64_t Timeout(const Request& request, std::string_view name, std::int64_t bound, std::string_view option) {
  std::optional<std::string_view> v = Given(request, name);
  if (!v) return bound;
  std::int64_t s = ParseSeconds(*v);
  if (s <= 0 || s > bound)
    Refuse(name, *v,
           "a duration (90, 90s, 30m, 2h, 1d) of at least 1s and at most sessiond's " + std::string(option) + " (" +
               std::to_string(bound) + "s)");
  return s;
}

}  // namespace

std::string_view ModeName(Route::Mode mode) {
  switch (mode) {
    case Route::Mode::Off: return "off";
    case Route::Mode::Read: return "read";
    case Route::Mode::Write: return "write";
    case Route::Mode::Exclusive: return "exclusive";
  }
  return "write";
}

std::int64_t ParseSeconds(std::string_view text) {
  if (text.empty()) return -1;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  if (text.empty() || text.size() > 12) return -1;
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n * unit;  // at most 10^12 days in seconds: no overflow
}

Route ReadRoute(const Request& request, std::string_view cookie_name, const StoreTimeouts& timeouts) {
  Route route;
  if (auto v = Given(request, "SESSION_MODE")) {
    if (*v == "off") route.mode = Route::Mode::Off;
    else if (*v == "read") route.mode = Route::Mode::Read;
    else if (*v == "write") route.mode = Route::Mode::Write;
    else if (*v == "exclusive") route.mode = Route::Mode::Exclusive;
    else Refuse("SESSION_MODE", *v, "off, read, write or exclusive");
  }
  if (auto v = Given(request, "SESSION_READ_TOUCH")) {
    if (*v == "on") route.read_touch = true;
    else if (*v != "off") Refuse("SESSION_READ_TOUCH", *v, "on or off");
  }
  if (auto v = Given(request, "SESSION_SITE")) {
    if (!IsSiteName(*v)) Refuse("SESSION_SITE", *v, "1 to 64 letters, digits, '.', '_' or '-'");
    route.site = *v;
  }
  route.cookie_name = cookie_name;
  if (auto v = Given(request, "SESSION_COOKIE")) {
    if (!IsCookieName(*v)) Refuse("SESSION_COOKIE", *v, "a cookie name (letters, digits, !#$%&'*+-.^_`|~)");
    route.cookie_name = *v;
  }
  route.timeouts.idle = Timeout(request, "SESSION_IDLE_TIMEOUT", timeouts.idle, "--idle-timeout");
  route.timeouts.absolute = Timeout(request, "SESSION_ABSOLUTE_TIMEOUT", timeouts.absolute, "--absolute-timeout");
  if (auto v = Given(request, "SESSION_ON_STORE_ERROR")) {
    if (*v == "degrade") route.on_store_error = Route::OnStoreError::Degrade;
    else if (*v != "fail") Refuse("SESSION_ON_STORE_ERROR", *v, "fail or degrade");
  }
  return route;
}

}  // namespace sessiond
