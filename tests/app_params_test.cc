#include "middleware/runners/app_params.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <map>
#include <string>

#include "middleware/base/percent.h"
#include "middleware/fastcgi/fcgi_record.h"
#include "middleware/runners/runner.h"

using namespace sessiond;

namespace {

// php-fpm's reading of FCGI_PARAMS (main/fastcgi.c, fcgi_get_params), byte
// for byte: the pairs of one record's content, none running past its end.
bool PhpFpmReadsPairs(std::string_view c, std::map<std::string, std::string>& vars) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(c[i]); };
  std::size_t p = 0;
  const std::size_t end = c.size();
  while (p < end) {
    std::size_t name_len = byte(p++);
    if (name_len >= 128) {
      if (p + 3 >= end) return false;
      name_len = ((name_len & 0x7f) << 24) | (byte(p) << 16) | (byte(p + 1) << 8) | byte(p + 2);
      p += 3;
    }
    if (p >= end) return false;
    std::size_t val_len = byte(p++);
    if (val_len >= 128) {
      if (p + 3 >= end) return false;
      val_len = ((val_len & 0x7f) << 24) | (byte(p) << 16) | (byte(p + 1) << 8) | byte(p + 2);
      p += 3;
    }
    if (name_len + val_len > end - p) return false;
    vars[std::string(c.substr(p, name_len))] = std::string(c.substr(p + name_len, val_len));
    p += name_len + val_len;
  }
  return true;
}

// The parameters as php-fpm gets them; fails the test when any record holds
// a pair php-fpm cannot read, or the stream does not end with the empty record.
std::map<std::string, std::string> AsPhpFpmReadsThem(std::string_view out) {
  std::map<std::string, std::string> vars;
  for (;;) {
    fcgi::Record r;
    std::size_t used = 0;
    REQUIRE(fcgi::ParseRecord(out, r, used) == fcgi::Parse::kRecord);
    REQUIRE(r.type == fcgi::kParams);
    REQUIRE(r.request_id == 1);
    out.remove_prefix(used);
    if (r.content.empty()) break;
    REQUIRE(PhpFpmReadsPairs(r.content, vars));
  }
  CHECK(out.empty());
  return vars;
}

// HTTP_SESSION's text, whole or joined from its chunks (as the bridge does).
std::string SessionText(const std::map<std::string, std::string>& vars) {
  if (!vars.count("SESSION_CHUNKS")) return vars.at("HTTP_SESSION");
  CHECK(!vars.count("HTTP_SESSION"));
  std::size_t n = std::stoul(vars.at("SESSION_CHUNKS"));
  std::string text;
  for (std::size_t i = 1; i <= n; ++i) {
    const std::string& chunk = vars.at("SESSION_CHUNK_" + std::to_string(i));
    CHECK(chunk.size() <= kSessionChunkBytes);
    CHECK((i == n || chunk.size() == kSessionChunkBytes));
    text += chunk;
  }
  CHECK(!vars.count("SESSION_CHUNK_" + std::to_string(n + 1)));
  return text;
}

std::map<std::string, std::string> Params(const std::vector<std::string>& env, const Session* session,
                                          std::size_t* left_out = nullptr) {
  std::string out;
  std::size_t n = AppendAppParams(out, 1, env, session);
  if (left_out) *left_out = n;
  return AsPhpFpmReadsThem(out);
}

}  // namespace

TEST_CASE("app params: a small session goes whole, as HTTP_SESSION", "[app_params]") {
  Session s;
  s.id = "the-id";
  s.items = {{"UserName", "ann"}, {"odd key", "x"}};
  auto vars = Params({"SCRIPT_FILENAME=/srv/a.php", "QUERY_STRING=a=b"}, &s);
  CHECK(vars.at("SCRIPT_FILENAME") == "/srv/a.php");
  CHECK(vars.at("QUERY_STRING") == "a=b");
  CHECK(vars.at("HTTP_SESSION") == "UserName=ann&odd%20key=x");
  CHECK(vars.at("SESSION_VAR_UserName") == "ann");
  CHECK(vars.at("SESSION_ID") == "the-id");
  CHECK(vars.at("SESSION_NEW") == "0");
  CHECK(!vars.count("SESSION_CHUNKS"));

  auto none = Params({}, nullptr);
  CHECK(none.at("HTTP_SESSION").empty());
  CHECK(none.at("SESSION_NEW") == "1");
  CHECK(none.at("SESSION_ID").empty());
}

// One item "k": HTTP_SESSION is "k=" and the value; its pair is 1 + 4 + 12
// + 2 + v bytes, SESSION_VAR_k's 1 + 4 + 13 + v: the largest pair one record
// holds is kMaxContent (65535) bytes.
TEST_CASE("app params: every pair fits one record, at the boundary and one byte past", "[app_params]") {
  Session s;
  s.id = "id";
  const std::size_t v = fcgi::kMaxContent - 19;  // HTTP_SESSION's pair exactly fills a record
  s.items = {{"k", std::string(v, 'x')}};
  auto vars = Params({}, &s);
  CHECK(fcgi::NameValueSize(12, 2 + v) == fcgi::kMaxContent);
  CHECK(vars.at("HTTP_SESSION") == "k=" + std::string(v, 'x'));
  CHECK(!vars.count("SESSION_CHUNKS"));
  CHECK(vars.at("SESSION_VAR_k") == s.items["k"]);

  s.items["k"] += 'x';  // one byte past: chunks; SESSION_VAR_k exactly fills a record
  vars = Params({}, &s);
  CHECK(fcgi::NameValueSize(13, v + 1) == fcgi::kMaxContent);
  CHECK(!vars.count("HTTP_SESSION"));
  CHECK(vars.at("SESSION_CHUNKS") == "2");
  CHECK(SessionText(vars) == "k=" + s.items["k"]);
  CHECK(vars.at("SESSION_VAR_k") == s.items["k"]);

  s.items["k"] += 'x';  // SESSION_VAR_k one byte past: left out, the value still in the chunks
  std::size_t left_out = 0;
  vars = Params({}, &s, &left_out);
  CHECK(!vars.count("SESSION_VAR_k"));
  CHECK(left_out == 1);
  CHECK(SessionText(vars) == "k=" + s.items["k"]);
}

TEST_CASE("app params: a session of 1 MiB, non-ASCII text (3x once encoded) included", "[app_params]") {
  Session s;
  s.id = "id";
  std::string text;
  while (text.size() < 60000) text += "\xc3\xa9";  // é
  s.items = {{"a", std::string(65536, 'a')}, {"t", text}, {"b", std::string(35000, 'b')},
             {"c", std::string(35000, 'c')},  {"UserName", "ann"}};
  for (int i = 0; s.items.size() < 30; ++i) s.items["n" + std::to_string(i)] = std::string(30000, '\x01');
  auto vars = Params({"REQUEST_METHOD=GET"}, &s);
  const std::string whole = EncodeItems(s.items);
  CHECK(whole.size() > 2 * 1024 * 1024);
  CHECK(SessionText(vars) == whole);
  CHECK(DecodeItems(SessionText(vars)) == s.items);
  CHECK(vars.at("SESSION_CHUNKS") == std::to_string((whole.size() + kSessionChunkBytes - 1) / kSessionChunkBytes));
  CHECK(!vars.count("SESSION_VAR_a"));  // 64 KiB: no room in a record beside its name
  CHECK(vars.at("SESSION_VAR_t") == text);
  CHECK(vars.at("SESSION_VAR_UserName") == "ann");
  CHECK(vars.at("REQUEST_METHOD") == "GET");
}

TEST_CASE("app params: a web server variable larger than a record is left out, and counted", "[app_params]") {
  std::size_t left_out = 0;
  auto vars = Params({"HTTP_X_BIG=" + std::string(fcgi::kMaxContent, 'x'), "HTTP_X_SMALL=1"}, nullptr, &left_out);
  CHECK(left_out == 1);
  CHECK(!vars.count("HTTP_X_BIG"));
  CHECK(vars.at("HTTP_X_SMALL") == "1");
}

TEST_CASE("app params: a client cannot send chunks of its own", "[app_params]") {
  // nginx turns a "Session-Chunks:" header into HTTP_SESSION_CHUNKS; only
  // the web server's own fastcgi_param could name SESSION_..., and those are
  // dropped with the rest of SESSION_*.
  auto env = CleanEnvironment({"SESSION_CHUNKS=1", "SESSION_CHUNK_1=UserName=admin", "HTTP_SESSION_CHUNKS=1"});
  auto vars = Params(env, nullptr);
  CHECK(!vars.count("SESSION_CHUNKS"));
  CHECK(!vars.count("SESSION_CHUNK_1"));
  CHECK(vars.at("HTTP_SESSION").empty());
}

TEST_CASE("app params: an off route sends the mode and no session at all", "[app_params][modes]") {
  Session s;
  s.id = "the-id";
  s.items = {{"UserName", "ann"}};
  std::string out;
  CHECK(AppendAppParams(out, 1, {"SCRIPT_FILENAME=/srv/a.php", "SESSION_MODE=off"}, &s, {}, true) == 0);
  auto vars = AsPhpFpmReadsThem(out);
  CHECK(vars.at("SESSION_MODE") == "off");
  CHECK(vars.at("SCRIPT_FILENAME") == "/srv/a.php");
  for (const auto& [name, value] : vars) {
    INFO(name);
    CHECK((name == "SESSION_MODE" || name.find("SESSION") == std::string::npos));
  }
}

TEST_CASE("app params: a JSON item's text, its type, and SESSION_TYPES", "[app_params][types]") {
  Session s;
  s.id = "the-id";
  s.items = {{"visits", "3"}, {"cart", R"({"apple":1})"}, {"odd key", "[1]"}, {"name", "ann"}};
  s.json = {"visits", "cart", "odd key"};
  auto vars = Params({}, &s);
  // mod_session's format exactly: a JSON item is its JSON text.
  CHECK(vars.at("HTTP_SESSION") == "cart=%7B%22apple%22%3A1%7D&name=ann&odd%20key=%5B1%5D&visits=3");
  CHECK(vars.at("SESSION_VAR_visits") == "3");
  CHECK(vars.at("SESSION_VAR_cart") == R"({"apple":1})");
  CHECK(vars.at("SESSION_TYPE_visits") == "json");
  CHECK(vars.at("SESSION_TYPE_cart") == "json");
  CHECK(!vars.count("SESSION_TYPE_name"));  // strings have none
  CHECK(vars.at("SESSION_TYPES") == "cart&odd%20key&visits");

  s.json.clear();
  CHECK(!Params({}, &s).count("SESSION_TYPES"));  // absent when no item is JSON
  // A client cannot send types of its own.
  auto forged = Params(CleanEnvironment({"SESSION_TYPES=name", "SESSION_TYPE_name=json"}), &s);
  CHECK(!forged.count("SESSION_TYPES"));
  CHECK(!forged.count("SESSION_TYPE_name"));
}

TEST_CASE("app params: SESSION_TYPES too large for one record comes in chunks", "[app_params][types]") {
  Session s;
  s.id = "the-id";
  for (int i = 0; i < 1000; ++i) {
    std::string key = std::to_string(i) + std::string(250, 'k');  // not names: only SESSION_TYPES says their type
    s.items[key] = "1";
    s.json.insert(key);
  }
  auto vars = Params({}, &s);
  CHECK(!vars.count("SESSION_TYPES"));
  std::size_t n = std::stoul(vars.at("SESSION_TYPES_CHUNKS"));
  std::string text;
  for (std::size_t i = 1; i <= n; ++i) text += vars.at("SESSION_TYPES_CHUNK_" + std::to_string(i));
  CHECK(text == EncodeKeys(s.json));
  CHECK(SessionText(vars) == EncodeItems(s.items));
}

TEST_CASE("a page's session file holds the types on a second line", "[app_params][types]") {
  Session s;
  s.id = "the-id";
  s.items = {{"big", std::string(200, 'x')}, {"n", "3"}};
  s.json = {"n"};
  std::vector<std::string> env;
  // As a page gets it, with a variable limit the items' text passes.
  std::string file = AppendSession(env, &s, 100);
  CHECK(file == "big=" + std::string(200, 'x') + "&n=3\nn");
  CHECK(std::find(env.begin(), env.end(), "SESSION_TYPES=n") != env.end());
  CHECK(std::find(env.begin(), env.end(), "SESSION_TYPE_n=json") != env.end());
  s.json.clear();
  env.clear();
  CHECK(AppendSession(env, &s, 100) == "big=" + std::string(200, 'x') + "&n=3");  // no second line
}
