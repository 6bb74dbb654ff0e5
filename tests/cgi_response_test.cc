#include "middleware/request_path/cgi_response.h"

#include <catch2/catch.hpp>

using namespace sessiond;
using Kind = Change::Kind;

namespace {
CgiResponse Parse(std::string_view out) {
  auto r = ParseCgiResponse(out);
  if (auto* why = std::get_if<std::string>(&r)) FAIL("not parsed: " << *why);
  return std::get<CgiResponse>(r);
}
std::string Error(std::string_view out) {
  auto r = ParseCgiResponse(out);
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}
}  // namespace

TEST_CASE("a plain CGI response", "[cgi]") {
  CgiResponse r = Parse("Content-Type: text/html\r\nX-Other:  v \r\n\r\n<p>hi</p>\n");
  CHECK(r.status == 200);
  CHECK(r.headers == std::vector<Header>{{"Content-Type", "text/html"}, {"X-Other", "v"}});
  CHECK(r.body == "<p>hi</p>\n");
  CHECK(r.session.empty());
}

TEST_CASE("LF line ends, Status and Location", "[cgi]") {
  CgiResponse r = Parse("Status: 404 Nope\nContent-Type: text/plain\n\nbody");
  CHECK(r.status == 404);
  CHECK(r.reason == "Nope");
  CHECK(r.headers.size() == 1);
  CHECK(Parse("Location: /home\n\n").status == 302);
  CgiResponse see_other = Parse("Status: 303\r\nLocation: /home\r\n\r\n");
  CHECK(see_other.status == 303);
  CHECK(see_other.reason.empty());
  CHECK(see_other.headers == std::vector<Header>{{"Location", "/home"}});
  CHECK(Parse("Content-Type: a\n\n").body.empty());
}

TEST_CASE("session headers become a change set and are removed", "[cgi]") {
  CgiResponse r = Parse(
      "X-Session-Set: UserName=Ann%20B\r\n"
      "x-session-set: cart=3\r\n"
      "X-Session-Remove: old%2Dkey\r\n"
      "X-Session-Clear: 0\r\n"
      "X-Replace-Session: a=1&b=2\r\n"
      "X-Session-Regenerate: 1\r\n"
      "Content-Type: text/plain\r\n\r\n");
  CHECK(r.headers == std::vector<Header>{{"Content-Type", "text/plain"}});
  REQUIRE(r.session.changes.size() == 4);
  CHECK(r.session.changes[0].kind == Kind::Set);
  CHECK(r.session.changes[0].key == "UserName");
  CHECK(r.session.changes[0].value == "Ann B");
  CHECK(r.session.changes[1].key == "cart");
  CHECK(r.session.changes[2].kind == Kind::Remove);
  CHECK(r.session.changes[2].key == "old-key");
  CHECK(r.session.changes[3].kind == Kind::Replace);
  CHECK(r.session.changes[3].items == Items{{"a", "1"}, {"b", "2"}});
  CHECK(r.session.regenerate);
  CHECK_FALSE(r.session.abandon);
  CHECK(Parse("X-Session-Abandon: 1\n\n").session.abandon);
  CHECK(Parse("X-Session-Clear: 1\n\n").session.changes.at(0).kind == Kind::Clear);
  CHECK(Parse("X-Replace-Session:\n\n").session.changes.at(0).items.empty());
}

TEST_CASE("output that is not a CGI response", "[cgi]") {
  CHECK(Error("") == "page output has no blank line ending its headers");
  CHECK(Error("Content-Type: text/plain\r\n") == "page output has no blank line ending its headers");
  CHECK(Error("Content-Type: text/plain") == "page output has no blank line ending its headers");
  CHECK(Error("\r\nbody") == "page output has no headers");
  CHECK(Error("hello world\n\n") == "page output line 1 is not a header");
  CHECK(Error("A: b\n: empty name\n\n") == "page output line 2 is not a header");
  CHECK(Error("Bad Name: x\n\n") == "page output line 1 is not a header");
  CHECK(Error("Status: 2000\n\n").rfind("page sent a bad Status", 0) == 0);
  CHECK(Error("Status: abc\n\n").rfind("page sent a bad Status", 0) == 0);
  CHECK(Error("Status: 600 x\n\n").rfind("page sent a bad Status", 0) == 0);
  // A 1xx is never a final answer: passed on, it would end the response
  // with the body still to come and desync the client's connection.
  for (std::string code : {"100", "101", "103", "199", "000", "099"}) {
    INFO(code);
    CHECK(Error("Status: " + code + " Continue\r\nContent-Type: text/plain\r\n\r\nbody")
              .rfind("page sent a bad Status", 0) == 0);
  }
  CHECK(Error("Status: 200 OK\nStatus: 404\n\n").rfind("page sent a second Status", 0) == 0);
  CHECK(Error("Status: 20x\n\n").rfind("page sent a bad Status", 0) == 0);
  CHECK(Error("Status: 200OK\n\n").rfind("page sent a bad Status", 0) == 0);
  CHECK(Error("Status:\n\n").rfind("page sent a bad Status", 0) == 0);
  CHECK(Parse("Status: 200\n\n").status == 200);
  CHECK(Parse("Status: 599 Edge\n\n").status == 599);
  CHECK(Error("X-Session-Set: novalue\n\n") == "page sent a malformed X-Session-Set header");
  CHECK(Error("X-Session-Set: =v\n\n") == "page sent a malformed X-Session-Set header");
  CHECK(Error("X-Session-Set: k=%zz\n\n") == "page sent a malformed X-Session-Set header");
  CHECK(Error("X-Session-Remove:\n\n") == "page sent a malformed X-Session-Remove header");
  CHECK(Error("X-Session-Abandon: yes\n\n") == "page sent a malformed X-Session-Abandon header");
  CHECK(Error("X-Replace-Session: a\n\n") == "page sent a malformed X-Replace-Session header");
}

TEST_CASE("a header value with a control byte is the page's failure", "[cgi]") {
  // A bare CR could split a header in two at the web server; NUL and the
  // other control bytes make nginx reject the whole response.
  for (std::string bad : {std::string("X-A: a\rb\r\n\r\n"), std::string("X-A: a\0b\n\n", 10),
                          std::string("X-A: \x1b[31m\n\n"), std::string("X-A: a\x7f\n\n"),
                          std::string("Set-Cookie: a=b\x01\n\n")}) {
    INFO(bad);
    CHECK(Error(bad).find("has a control byte") != std::string::npos);
  }
  CHECK(Parse("X-A: tab\there and UTF-8 caf\xc3\xa9\n\n").headers.at(0).second == "tab\there and UTF-8 caf\xc3\xa9");
}

TEST_CASE("X-Session-Set-Json sets a JSON item, X-Session-Set a string", "[cgi][types]") {
  CgiResponse r = Parse(
      "X-Session-Set-Json: visits=3\r\n"
      "X-Session-Set-Json: cart=%20%7B%22apple%22%3A1%7D%0A\r\n"
      "X-Session-Set: name=ann\r\n\r\n");
  REQUIRE(r.session.changes.size() == 3);
  CHECK(r.session.changes[0].key == "visits");
  CHECK(r.session.changes[0].value == "3");
  CHECK(r.session.changes[0].type == ItemType::Json);
  CHECK(r.session.changes[1].value == R"({"apple":1})");  // the whitespace around it dropped
  CHECK(r.session.changes[1].type == ItemType::Json);
  CHECK(r.session.changes[2].type == ItemType::String);
  CHECK(r.headers.empty());

  // Not JSON: the page failed, and says why; nothing becomes a change.
  for (const char* bad : {"k=", "k=abc", "k=%7B", "k=01", "k=1%201", "k=%22a", "k=%27a%27", "k=NaN"}) {
    INFO(bad);
    auto out = ParseCgiResponse(std::string("X-Session-Set-Json: ") + bad + "\n\n");
    REQUIRE(std::holds_alternative<std::string>(out));
    CHECK_THAT(std::get<std::string>(out), Catch::Contains("not JSON"));
  }
  CHECK(std::holds_alternative<std::string>(ParseCgiResponse("X-Session-Set-Json: =1\n\n")));
  CHECK(std::holds_alternative<std::string>(ParseCgiResponse("X-Session-Set-Json: k\n\n")));
}

TEST_CASE("JSON text is checked against RFC 8259", "[types]") {
  for (const char* good : {"0", "-0", "3", "-12.5e+3", "1E9", "0.25", "true", "false", "null", R"("")",
                           R"("a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D")", "[]", "{}", " [1, 2 ,3] ", R"({"a":{"b":[null]}})",
                           "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\t\n\r 1 \r\n"}) {
    INFO(good);
    CHECK(IsJsonText(good));
  }
  for (const char* bad : {"", " ", "01", "1.", ".5", "+1", "1e", "0x10", "NaN", "Infinity", "tru", "nul", "True",
                          R"('a')", R"("a)", R"("\x")", R"("\u12")", "\"a\tb\"", "[1,]", "[,1]", "{\"a\"}",
                          "{\"a\":1,}", "{a:1}", "[1]]", "1 2", "[1] x", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
                          "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "\"\xff\""}) {
    INFO(bad);
    CHECK_FALSE(IsJsonText(bad));
  }
  CHECK_FALSE(IsJsonText(std::string("\"a\0b\"", 5)));
  CHECK(IsJsonText(std::string(512, '[') + std::string(512, ']')));
  CHECK_FALSE(IsJsonText(std::string(513, '[') + std::string(513, ']')));
  CHECK_FALSE(IsJsonText(std::string(100000, '[')));  // deep and unclosed: refused, not a crash
}
