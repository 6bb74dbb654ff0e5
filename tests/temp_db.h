// For the store's tests: a database file in a fresh directory, and SQL run
// on a connection of its own, as an operator with the sqlite3 shell would
// (PRAGMA foreign_keys off, the shell's default).
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>

#include "store/session.h"
#include "store/open.h"
#include "store/session_id.h"
#include "store/sqlite/sqlite_backend.h"

namespace sessiond::testing {

struct TempDb {
  std::string dir, path;
  TempDb() {
    char d[] = "/tmp/sessiond-store-test.XXXXXX";
    REQUIRE(mkdtemp(d));
    dir = d;
    path = dir + "/sessions.db";
  }
  ~TempDb() {
    ::chmod(dir.c_str(), 0700);  // a test may have taken the write permission away
    std::filesystem::remove_all(dir);
  }
  StoreOptions options() const {
    StoreOptions o;
    o.db = path;
    o.timeouts.idle = 600;
    o.timeouts.absolute = 3600;
    return o;
  }
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
  // The first column of the first row of `sql`, as text ("" when NULL or no row).
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

// A change set of Set changes, in order.
inline ChangeSet Sets(std::initializer_list<std::pair<std::string, std::string>> kv) {
  ChangeSet cs;
  for (const auto& [k, v] : kv) cs.changes.push_back({Change::Kind::Set, k, v, {}});
  return cs;
}

// `n` sessions written at `at` straight through the engine, in one
// transaction: made quickly, they expire an idle timeout after `at`.
inline void InsertSessions(const StoreOptions& o, int n, std::int64_t at) {
  SqliteBackend setup(o);
  setup.Write([&](StoreWriter& w) {
    for (int i = 0; i < n; ++i) w.Insert(DigestOf(NewSessionId()), at, o.timeouts, "");
  });
}

}  // namespace sessiond::testing
