// Per-route session behaviour, as the web server configures it for a
// location: parameters only the web server sets (fastcgi_param in nginx,
// SetEnv in Apache). A client cannot set any of them: its headers reach
// sessiond as HTTP_*, and what the web server sends as SESSION_* is never
// passed on to a page or app (runner.h's CleanEnvironment).
//
//   SESSION_MODE              off | read | write (default) | exclusive
//   SESSION_READ_TOUCH        on | off (default): a read route keeps the session alive
//   SESSION_SITE              the site the session belongs to; default: the default site ("")
//   SESSION_COOKIE            the site's cookie name; default: --cookie-name
//   SESSION_IDLE_TIMEOUT      the site's idle timeout, at most --idle-timeout
//   SESSION_ABSOLUTE_TIMEOUT  the site's absolute timeout, at most --absolute-timeout
//   SESSION_ON_STORE_ERROR    fail (default) | degrade: with the store out of
//                             reach, run the page without its session
//                             (SESSION_STATUS=unavailable) instead of a 503
//
// A parameter sent empty counts as not sent (nginx sends `fastcgi_param X $var;`
// empty when $var is). Any other value that is not understood, or out of
// bounds, is the configuration's fault: HttpError 500 whose message names the
// parameter and says what it accepts; never a silent default.
#pragma once

#include <string>
#include <string_view>

#include "middleware/base/request.h"
#include "store/backend.h"

namespace sessiond {

struct Route {
  enum class Mode {
    Off,        // no cookie read, no load, no commit, no Set-Cookie
    Read,       // loaded and injected, never written (touched only with read_touch)
    Write,      // today's behaviour: per-key merge of concurrent requests
    Exclusive,  // as Write, one request of a session at a time across the farm
  };
  Mode mode = Mode::Write;
  bool read_touch = false;
  std::string site;         // [A-Za-z0-9._-]{1,64}; "" is the default site
  std::string cookie_name;  // a cookie-name token (RFC 6265)
  StoreTimeouts timeouts;   // within the process's
  // The store out of reach (an error that is a 503: busy past --busy-timeout,
  // a database that is down) while loading: Fail answers 503; Degrade runs
  // the page without a session and refuses any change it asks for (503).
  enum class OnStoreError { Fail, Degrade };
  OnStoreError on_store_error = OnStoreError::Fail;
};

// The lower-case name of `mode`, as SESSION_MODE spells it.
std::string_view ModeName(Route::Mode mode);

// The route of `request`: its SESSION_* parameters over the defaults
// (`cookie_name`, `timeouts`: the process's settings). Throws HttpError(500).
Route ReadRoute(const Request& request, std::string_view cookie_name, const StoreTimeouts& timeouts);

// "30", "90s", "30m", "2h", "1d" as seconds (> 0), or -1 when `text` is not
// such a duration.
std::int64_t ParseSeconds(std::string_view text);

}  // namespace sessiond
