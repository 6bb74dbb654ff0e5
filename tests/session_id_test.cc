#include "store/session_id.h"

#include <catch2/catch.hpp>
#include <set>

using namespace sessiond;

TEST_CASE("new ids are 43 URL-safe characters and all different", "[id]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewSessionId();
    REQUIRE(id.size() == kIdLength);
    REQUIRE(IsWellFormedId(id));
    REQUIRE(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
            std::string::npos);
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("only the exact shape of an id is well-formed", "[id]") {
  std::string id = NewSessionId();
  CHECK_FALSE(IsWellFormedId(""));
  CHECK_FALSE(IsWellFormedId(id.substr(1)));
  CHECK_FALSE(IsWellFormedId(id + "A"));
  CHECK_FALSE(IsWellFormedId(std::string(42, 'A') + "B"));  // padding bits set
  CHECK(IsWellFormedId(std::string(42, 'A') + "E"));
  std::string bad = id;
  bad[5] = '+';
  CHECK_FALSE(IsWellFormedId(bad));
  bad[5] = '/';
  CHECK_FALSE(IsWellFormedId(bad));
  bad[5] = '=';
  CHECK_FALSE(IsWellFormedId(bad));
}

TEST_CASE("the digest is SHA3-256, as the sqlite3 shell's sha3(id, 256)", "[id]") {
  // sqlite3 :memory: "SELECT hex(sha3('abc', 256))"
  IdDigest d = DigestOf("abc");
  CHECK(d[0] == 0x3a);
  CHECK(d[1] == 0x98);
  CHECK(d[31] == 0x32);
  CHECK(DigestOf(NewSessionId()) != DigestOf(NewSessionId()));
}

TEST_CASE("a sealed id opens only with the old id it was sealed for", "[id]") {
  for (int i = 0; i < 100; ++i) {
    std::string old_id = NewSessionId(), new_id = NewSessionId();
    SealedId sealed = SealId(new_id, old_id);
    CHECK(UnsealId(sealed, old_id) == new_id);
    std::string other = UnsealId(sealed, NewSessionId());
    CHECK(other != new_id);
    CHECK(IsWellFormedId(other));
  }
}

TEST_CASE("a site's digest is of site:id, the default site's is the id's alone", "[id][sites]") {
  std::string id = NewSessionId();
  CHECK(DigestOf(id, "") == DigestOf(id));  // stores made before sites keep their sessions
  CHECK(DigestOf(id, "shop") == DigestOf("shop:" + id));  // sha3('shop:' || id, 256) in the sqlite3 shell
  CHECK(DigestOf(id, "shop") != DigestOf(id));
  CHECK(DigestOf(id, "shop") != DigestOf(id, "blog"));
}
