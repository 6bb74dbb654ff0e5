#include "middleware/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>

using namespace sessiond;

namespace {
// A config that passes, whoever runs the test.
Config Good() {
  Config c;
  c.pages = "/tmp";
  c.allow_root = true;
  return c;
}
bool Says(const std::vector<std::string>& errors, const std::string& part) {
  for (const std::string& e : errors)
    if (e.find(part) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("the defaults are valid", "[config]") {
  Config c = Good();
  CHECK(Validate(c).empty());
}

TEST_CASE("a cookie name must be a token, SameSite=None needs Secure", "[config]") {
  Config c = Good();
  c.cookie.name = "bad name;";
  CHECK(Says(Validate(c), "--cookie-name"));
  c = Good();
  c.cookie.same_site = "None";
  CHECK(Says(Validate(c), "--cookie-samesite None needs --cookie-secure"));
  c.cookie_secure = true;
  CHECK(Validate(c).empty());
}

TEST_CASE("session limits must fit what a page can be given", "[config]") {
  Config c = Good();
  c.store.limits.max_value_bytes = 200 * 1024;
  CHECK(Says(Validate(c), "128KiB"));
  c = Good();
  c.store.limits.max_session_bytes = std::size_t(1) << 40;
  CHECK(Says(Validate(c), "exceed the system's limit"));
}

TEST_CASE("who pages run as", "[config]") {
  Config c = Good();
  c.user = "no-such-user-of-sessiond";
  CHECK(Says(Validate(c), "no such user"));
  c = Good();
  c.group = "nogroup";
  CHECK(Says(Validate(c), "--group needs --user"));
  if (::geteuid() == 0) {
    c = Good();
    c.allow_root = false;
    CHECK(Says(Validate(c), "refusing to run pages as root"));
    c.user = "nobody";
    CHECK(Validate(c).empty());
    CHECK(c.page_user.set);
    CHECK(c.page_user.uid != 0);
  } else {
    c = Good();
    c.user = "root";
    CHECK(Says(Validate(c), "only root can run pages as another user"));
  }
}

TEST_CASE("the temporary directory must take an unnamed file", "[config]") {
  Config c = Good();
  c.server.temp_dir = "/proc";
  CHECK(Says(Validate(c), "--temp-dir /proc"));
  c.server.temp_dir = "/nonexistent-sessiond-dir";
  CHECK(Says(Validate(c), "--temp-dir"));
}

TEST_CASE("a status path is a URI path", "[config][metrics]") {
  Config c = Good();
  c.status_path = "/sessiond-status";
  CHECK(Validate(c).empty());
  for (const char* bad : {"sessiond-status", "/status?x", "/a b"}) {
    c.status_path = bad;
    INFO(bad);
    CHECK(Says(Validate(c), "--status-path"));
  }
}
