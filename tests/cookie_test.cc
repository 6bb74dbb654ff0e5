#include "middleware/request_path/cookie.h"

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("finding the session cookie", "[cookie]") {
  CHECK(FindCookie("sid=abc", "sid") == "abc");
  CHECK(FindCookie("a=1; sid=abc; b=2", "sid") == "abc");
  CHECK(FindCookie("a=1;sid=abc;b=2", "sid") == "abc");
  CHECK(FindCookie("  sid = abc  ", "sid") == "abc");
  CHECK(FindCookie("sid=\"abc\"", "sid") == "abc");
  CHECK(FindCookie("sid=first; sid=second", "sid") == "first");
  CHECK(FindCookie("sid=", "sid") == "");
  CHECK_FALSE(FindCookie("", "sid"));
  CHECK_FALSE(FindCookie("xsid=1; sidx=2; SID=3", "sid"));
  CHECK_FALSE(FindCookie("sid", "sid"));
  CHECK_FALSE(FindCookie(";;;", "sid"));
  CHECK(FindCookie("garbage; ; =x; sid=ok", "sid") == "ok");
  // Apache joins two Cookie headers with ", ".
  CHECK(FindCookie("a=1, sid=abc", "sid") == "abc");
  CHECK(FindCookie("a=1; b=2, sid=abc; c=3", "sid") == "abc");
  CHECK(FindCookie("a=x,y, sid=abc", "sid") == "abc");
}

TEST_CASE("every cookie's value, whatever its name (for the log's masking)", "[cookie][sites]") {
  using V = std::vector<std::string_view>;
  CHECK(CookieValues("sid=a; shop_sid=\"b\", blog_sid = c ;x") == V{"a", "b", "c"});
  CHECK(CookieValues("").empty());
}

TEST_CASE("Set-Cookie values", "[cookie]") {
  CookieAttributes a;
  CHECK(SessionCookie("ID", a) == "sid=ID; Path=/; HttpOnly; SameSite=Lax");
  a.name = "app";
  a.secure = true;
  a.same_site = "Strict";
  a.max_age = 3600;
  CHECK(SessionCookie("ID", a) == "app=ID; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=3600");
  CHECK(ExpiredCookie(a) ==
        "app=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
}
