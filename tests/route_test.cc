#include "middleware/request_path/route.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "middleware/base/http.h"

using namespace sessiond;

namespace {

// Only the parameters: the route reads nothing else of a request.
class Params final : public Request {
 public:
  Params(std::initializer_list<std::string> kv) : text_(kv) {
    for (const std::string& s : text_) env_.emplace_back(s);
  }
  const std::vector<std::string_view>& Environment() const override { return env_; }
  const SpillBuffer& Body() const override { throw std::logic_error("no body"); }
  void Write(std::string_view) override {}

 private:
  std::vector<std::string> text_;
  std::vector<std::string_view> env_;
};

StoreTimeouts Bounds() {
  StoreTimeouts t;
  t.idle = 3600;
  t.absolute = 86400;
  return t;
}

Route Read(std::initializer_list<std::string> kv) { return ReadRoute(Params(kv), "sid", Bounds()); }

// The message of the HttpError the parameters cause, or "" when none.
std::string Refusal(std::initializer_list<std::string> kv) {
  try {
    Read(kv);
  } catch (const HttpError& e) {
    CHECK(e.status() == 500);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a route without parameters is today's behaviour", "[route]") {
  Route r = Read({"SCRIPT_FILENAME=/x"});
  CHECK(r.mode == Route::Mode::Write);
  CHECK_FALSE(r.read_touch);
  CHECK(r.site.empty());
  CHECK(r.cookie_name == "sid");
  CHECK(r.timeouts.idle == 3600);
  CHECK(r.timeouts.absolute == 86400);
  CHECK(r.on_store_error == Route::OnStoreError::Fail);
}

TEST_CASE("every mode, and an empty parameter counts as not sent", "[route]") {
  CHECK(Read({"SESSION_MODE=off"}).mode == Route::Mode::Off);
  CHECK(Read({"SESSION_MODE=read"}).mode == Route::Mode::Read);
  CHECK(Read({"SESSION_MODE=write"}).mode == Route::Mode::Write);
  CHECK(Read({"SESSION_MODE=exclusive"}).mode == Route::Mode::Exclusive);
  CHECK(Read({"SESSION_MODE="}).mode == Route::Mode::Write);
  CHECK(Read({"SESSION_READ_TOUCH=on"}).read_touch);
  CHECK_FALSE(Read({"SESSION_READ_TOUCH=off"}).read_touch);
  for (Route::Mode m : {Route::Mode::Off, Route::Mode::Read, Route::Mode::Write, Route::Mode::Exclusive})
    CHECK(Read({"SESSION_MODE=" + std::string(ModeName(m))}).mode == m);
}

TEST_CASE("what a store out of reach does: fail, or degrade", "[route]") {
  CHECK(Read({"SESSION_ON_STORE_ERROR=degrade"}).on_store_error == Route::OnStoreError::Degrade);
  CHECK(Read({"SESSION_ON_STORE_ERROR=fail"}).on_store_error == Route::OnStoreError::Fail);
  CHECK(Read({"SESSION_ON_STORE_ERROR="}).on_store_error == Route::OnStoreError::Fail);
  CHECK(Read({"SESSION_MODE=read", "SESSION_ON_STORE_ERROR=degrade"}).on_store_error ==
        Route::OnStoreError::Degrade);
}

TEST_CASE("a client's header never sets the route", "[route]") {
  Route r = Read({"HTTP_SESSION_MODE=off", "HTTP_SESSION_SITE=other", "HTTP_SESSION_COOKIE=x",
                  "HTTP_SESSION_IDLE_TIMEOUT=1", "HTTP_SESSION_ON_STORE_ERROR=degrade"});
  CHECK(r.mode == Route::Mode::Write);
  CHECK(r.site.empty());
  CHECK(r.cookie_name == "sid");
  CHECK(r.timeouts.idle == 3600);
  CHECK(r.on_store_error == Route::OnStoreError::Fail);
}

TEST_CASE("sites, cookies and timeouts within sessiond's bounds", "[route]") {
  Route r = Read({"SESSION_SITE=shop", "SESSION_COOKIE=shop_sid", "SESSION_IDLE_TIMEOUT=30m",
                  "SESSION_ABSOLUTE_TIMEOUT=1d"});
  CHECK(r.site == "shop");
  CHECK(r.cookie_name == "shop_sid");
  CHECK(r.timeouts.idle == 1800);
  CHECK(r.timeouts.absolute == 86400);
  CHECK(Read({"SESSION_IDLE_TIMEOUT=3600"}).timeouts.idle == 3600);  // at the bound
  CHECK(Read({"SESSION_SITE=" + std::string(64, 'a')}).site.size() == 64);
}

TEST_CASE("a value not understood is a 500 naming the parameter", "[route]") {
  CHECK_THAT(Refusal({"SESSION_MODE=Read"}), Catch::Contains("SESSION_MODE 'Read'"));
  CHECK_THAT(Refusal({"SESSION_MODE=exclusive "}), Catch::Contains("SESSION_MODE"));
  CHECK_THAT(Refusal({"SESSION_READ_TOUCH=yes"}), Catch::Contains("SESSION_READ_TOUCH"));
  CHECK_THAT(Refusal({"SESSION_SITE=a/b"}), Catch::Contains("SESSION_SITE"));
  CHECK_THAT(Refusal({"SESSION_SITE=" + std::string(65, 'a')}), Catch::Contains("SESSION_SITE"));
  CHECK_THAT(Refusal({"SESSION_COOKIE=a b"}), Catch::Contains("SESSION_COOKIE"));
  // One second past the bound, zero, and no number at all.
  CHECK_THAT(Refusal({"SESSION_IDLE_TIMEOUT=3601"}), Catch::Contains("SESSION_IDLE_TIMEOUT '3601'"));
  CHECK_THAT(Refusal({"SESSION_IDLE_TIMEOUT=0"}), Catch::Contains("SESSION_IDLE_TIMEOUT"));
  CHECK_THAT(Refusal({"SESSION_ABSOLUTE_TIMEOUT=2d"}), Catch::Contains("at most sessiond's --absolute-timeout"));
  CHECK_THAT(Refusal({"SESSION_IDLE_TIMEOUT=30 m"}), Catch::Contains("SESSION_IDLE_TIMEOUT"));
  CHECK_THAT(Refusal({"SESSION_ON_STORE_ERROR=Degrade"}), Catch::Contains("SESSION_ON_STORE_ERROR 'Degrade'"));
  CHECK_THAT(Refusal({"SESSION_ON_STORE_ERROR=ignore"}), Catch::Contains("fail or degrade"));
  CHECK(Refusal({"SESSION_MODE=off", "SESSION_SITE=ok"}).empty());
}

TEST_CASE("durations", "[route]") {
  CHECK(ParseSeconds("90") == 90);
  CHECK(ParseSeconds("90s") == 90);
  CHECK(ParseSeconds("30m") == 1800);
  CHECK(ParseSeconds("2h") == 7200);
  CHECK(ParseSeconds("1d") == 86400);
  CHECK(ParseSeconds("") == -1);
  CHECK(ParseSeconds("m") == -1);
  CHECK(ParseSeconds("-5") == -1);
  CHECK(ParseSeconds("1.5h") == -1);
  CHECK(ParseSeconds("5w") == -1);
  CHECK(ParseSeconds("9999999999999") == -1);
}
