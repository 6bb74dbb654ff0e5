#include "middleware/base/address.h"

#include <catch2/catch.hpp>
#include <string>

using namespace sessiond;

TEST_CASE("an address is unix:PATH or HOST:PORT, one rule for --listen and --app", "[address]") {
  std::string why;
  SECTION("unix:PATH, up to the 107 bytes a socket path holds") {
    auto a = ParseAddress("unix:/run/sessiond/sessiond.sock", why);
    REQUIRE(a);
    CHECK(a->is_unix);
    CHECK(a->path == "/run/sessiond/sessiond.sock");
    CHECK(ParseAddress("unix:/" + std::string(106, 'p'), why));
    CHECK_FALSE(ParseAddress("unix:/" + std::string(107, 'p'), why));
    CHECK(why == "a unix socket path of 1 to 107 bytes");
    CHECK_FALSE(ParseAddress("unix:", why));
  }
  SECTION("HOST:PORT, [v6]:PORT and :PORT, which means loopback") {
    auto a = ParseAddress("php.internal:9000", why);
    REQUIRE(a);
    CHECK_FALSE(a->is_unix);
    CHECK(a->host == "php.internal");
    CHECK(a->port == "9000");
    a = ParseAddress("[::1]:9001", why);
    REQUIRE(a);
    CHECK(a->host == "::1");
    a = ParseAddress(":9002", why);
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
  }
  SECTION("ports from 1 to 65535 only") {
    CHECK(ParseAddress("h:1", why));
    CHECK(ParseAddress("h:65535", why));
    for (const char* bad : {"h:0", "h:65536", "h:", "h:99999999999", "h:-1", "h:80x"}) {
      why.clear();
      CHECK_FALSE(ParseAddress(bad, why));
      CHECK(why == "the port must be a number from 1 to 65535");
    }
  }
  SECTION("anything else is not an address") {
    CHECK_FALSE(ParseAddress("nonsense", why));
    CHECK(why == "not unix:PATH or HOST:PORT");
    CHECK_FALSE(ParseAddress("", why));
  }
}
