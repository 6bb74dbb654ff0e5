
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "store/session_id.h"
#include "store/sqlite_store.h"

using namespace sessiond;

namespace {

constexpr std::int64_t T0 = 1'800'000'000;

// A fresh directory with a database file in it, removed at the end.
struct TempDb {
  std::string dir, path;
  TempDb() {
    char d[] = "/tmp/sessiond-admin-test.XXXXXX";
    REQUIRE(mkdtemp(d));
    dir = d;
    path = dir + "/sessions.db";
  }
  ~TempDb() { std::filesystem::remove_all(dir); }
  SqliteOptions options() const {
    SqliteOptions o;
    o.path = path;
    o.idle_timeout = 600;
    o.absolute_timeout = 3600;
    return o;
  }
  // Runs SQL on a connection of its own, as an operator with the sqlite3
  // shell would (PRAGMA foreign_keys off, the shell's default).
  void exec(const std::string& sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
  std::string query(const std::string& sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
};

ChangeSet Sets(std::initializer_list<std::pair<std::string, std::string>> kv) {
  ChangeSet cs;
  for (const auto& [k, v] : kv) cs.changes.push_back({Change::Kind::Set, k, v, {}});
  return cs;
}

std::string Hex(const IdDigest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : d) out += {digits[b >> 4], digits[b & 15]};
  return out;
}

// Schema version 1 as sessiond 0.1 shipped it.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE sessions (
  id_hash  BLOB PRIMARY KEY,
  created  INTEGER NOT NULL,
  accessed INTEGER NOT NULL,
  expires  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions(expires);
CREATE TABLE items (
  id_hash BLOB NOT NULL REFERENCES sessions(id_hash) ON DELETE CASCADE ON UPDATE CASCADE,
  key     TEXT NOT NULL,
  value   BLOB NOT NULL,
  PRIMARY KEY (id_hash, key)
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

}  // namespace

TEST_CASE("migration 1 -> 2 keeps the sessions and removes only items of no session", "[store]") {
  TempDb t;
  t.exec(kSchemaV1);
  std::string id = NewSessionId();
  std::string hex = Hex(DigestOf(id));
  t.exec("INSERT INTO sessions VALUES (X'" + hex + "', " + std::to_string(T0) + ", " + std::to_string(T0) + ", " +
         std::to_string(T0 + 600) + ");"
         "INSERT INTO items VALUES (X'" + hex + "', 'UserName', 'ann'), (X'" + hex + "', 'cart', '3');"
         "INSERT INTO items VALUES (X'00', 'orphan', 'left by a shell DELETE without the pragma')");

  SqliteStore store(t.options());
  CHECK(t.query("PRAGMA user_version") == "2");
  auto s = store.Load(id, T0 + 1);
  REQUIRE(s);
  CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "3"}});
  CHECK(s->created == T0);
  CHECK(t.query("SELECT count(*) FROM items") == "2");
}

TEST_CASE("from version 2, items follow their session in the sqlite3 shell too", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string a = store.Commit(std::nullopt, Sets({{"k", "1"}, {"l", "2"}}), T0).id;
  std::string b = store.Commit(std::nullopt, Sets({{"k", "1"}}), T0).id;
  // The shell's connection has PRAGMA foreign_keys off.
  t.exec("DELETE FROM sessions WHERE id_hash = X'" + Hex(DigestOf(a)) + "'");
  CHECK(t.query("SELECT count(*) FROM items") == "1");
  std::string renamed = NewSessionId();
  t.exec("UPDATE sessions SET id_hash = X'" + Hex(DigestOf(renamed)) + "' WHERE id_hash = X'" +
         Hex(DigestOf(b)) + "'");
  auto s = store.Load(renamed, T0);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "1"}});

  // And in sessiond's own connections, with the pragma on, nothing changes.
  ChangeSet cs = Sets({{"m", "3"}});
  cs.regenerate = true;
  CommitResult r = store.Commit(s, cs, T0);
  REQUIRE(r.outcome == CommitResult::Outcome::Regenerated);
  CHECK(store.Load(r.id, T0)->items == Items{{"k", "1"}, {"m", "3"}});
  cs = ChangeSet{};
  cs.abandon = true;
  store.Commit(store.Load(r.id, T0), cs, T0);
  CHECK(t.query("SELECT count(*) FROM items") == "0");
}
