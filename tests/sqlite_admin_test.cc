#include "store/sqlite/sqlite_admin.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store/session_id.h"
#include "store/open.h"
#include "store/sqlite/sqlite_backend.h"
#include "store/sqlite/sqlite_db.h"
#include "tests/next_schema.h"
#include "tests/temp_db.h"

using namespace sessiond;
using Which = ListQuery::Which;

namespace {

constexpr std::int64_t T0 = 1'800'000'000;

// The shared temporary database, with an admin handle on it.
struct TempDb : testing::TempDb {
  SqliteAdminOptions admin_options(bool writable = false, int busy_ms = 1000) const {
    SqliteAdminOptions o;
    o.path = path;
    o.busy_timeout_ms = busy_ms;
    o.writable = writable;
    return o;
  }
  SqliteAdmin admin(bool writable = false, int busy_ms = 1000) const {
    return SqliteAdmin(admin_options(writable, busy_ms));
  }
};
using testing::Sets;

// A session row with a chosen digest (hex, padded with zeros), for prefix tests.
void InsertDigest(const TempDb& t, const std::string& hex) {
  std::string padded = hex + std::string(64 - hex.size(), '0');
  t.exec("INSERT INTO sessions VALUES (X'" + padded + "', " + std::to_string(T0) + ", " + std::to_string(T0) +
         ", " + std::to_string(T0 + 600) + ")");
}

std::vector<std::string> Tags(const std::vector<SessionSummary>& rows) {
  std::vector<std::string> out;
  for (const SessionSummary& r : rows) out.push_back(TagOf(r.digest));
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

TEST_CASE("list: live sessions, newest first, with their item count and bytes", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string a = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
  std::string b = store->Commit(std::nullopt, Sets({{"UserName", "bob"}, {"cart", "3"}}), T0 + 10).id;
  auto rows = t.admin().List({}, T0 + 20);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].digest == DigestOf(b));
  CHECK(rows[0].created == T0 + 10);
  CHECK(rows[0].accessed == T0 + 10);
  CHECK(rows[0].expires == T0 + 610);
  CHECK(rows[0].items == 2);
  CHECK(rows[0].bytes == std::string("UserNamebobcart3").size());
  CHECK(rows[1].digest == DigestOf(a));
  CHECK(rows[1].items == 1);
}

TEST_CASE("list: expired ones instead, or both, at most --limit", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());  // idle 600 s
  std::string old_one = store->Commit(std::nullopt, Sets({{"k", "1"}}), T0).id;
  std::string mid = store->Commit(std::nullopt, Sets({{"k", "2"}}), T0 + 300).id;
  std::string young = store->Commit(std::nullopt, Sets({{"k", "3"}}), T0 + 500).id;
  auto admin = t.admin();
  std::int64_t now = T0 + 600;  // the first has just expired: expires <= now, as the server's rule
  ListQuery q;
  CHECK(Tags(admin.List(q, now)) == std::vector{TagOf(DigestOf(young)), TagOf(DigestOf(mid))});
  q.which = Which::Expired;
  CHECK(Tags(admin.List(q, now)) == std::vector{TagOf(DigestOf(old_one))});
  q.which = Which::All;
  CHECK(admin.List(q, now).size() == 3);
  q.limit = 2;
  CHECK(Tags(admin.List(q, now)) == std::vector{TagOf(DigestOf(young)), TagOf(DigestOf(mid))});
  CHECK(store->Load(old_one, now) == std::nullopt);  // the server agrees
}

TEST_CASE("list --where: every given item, byte for byte", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string binary("\x00\xff", 2);
  std::string ann = store->Commit(std::nullopt, Sets({{"UserName", "ann"}, {"role", "admin"}}), T0).id;
  std::string ann2 = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0 + 1).id;
  std::string bob = store->Commit(std::nullopt, Sets({{"UserName", "bob"}, {"blob", binary}}), T0 + 2).id;
  auto admin = t.admin();
  auto where = [&](std::vector<ItemMatch> m) {
    ListQuery q;
    q.where = std::move(m);
    return Tags(admin.List(q, T0 + 10));
  };
  CHECK(where({{"UserName", "ann"}}) == std::vector{TagOf(DigestOf(ann2)), TagOf(DigestOf(ann))});
  CHECK(where({{"UserName", "ann"}, {"role", "admin"}}) == std::vector{TagOf(DigestOf(ann))});
  CHECK(where({{"blob", binary}}) == std::vector{TagOf(DigestOf(bob))});
  CHECK(where({{"UserName", "ann "}}).empty());
  CHECK(where({{"username", "ann"}}).empty());
  CHECK(where({{"UserName", "ann"}, {"UserName", "bob"}}).empty());
}

TEST_CASE("a session is named by its id or by a digest prefix of 4 or more hex digits", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  std::string hex = HexOf(DigestOf(id));
  auto admin = t.admin();
  auto found = [&](const std::string& text) {
    SessionRef r = FindSession(admin, text);
    return r.kind == SessionRef::Kind::Found && r.digest == DigestOf(id);
  };
  CHECK(found(id));
  CHECK(found(hex));
  CHECK(found(hex.substr(0, 4)));
  CHECK(found(hex.substr(0, 9)));
  std::string upper = hex.substr(0, 12);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(found(upper));

  CHECK(FindSession(admin, NewSessionId()).kind == SessionRef::Kind::NotFound);
  std::string other = hex.substr(0, 3) + (hex[3] == '0' ? '1' : '0');
  CHECK(FindSession(admin, other).kind == SessionRef::Kind::NotFound);
  CHECK(FindSession(admin, hex.substr(0, 3)).kind == SessionRef::Kind::Malformed);  // too short
  CHECK(FindSession(admin, "wxyz").kind == SessionRef::Kind::Malformed);
  CHECK(FindSession(admin, hex + "0").kind == SessionRef::Kind::Malformed);  // 65 digits
  CHECK(FindSession(admin, "").kind == SessionRef::Kind::Malformed);
}

TEST_CASE("a prefix several digests share is ambiguous, and lists them", "[admin]") {
  TempDb t;
  { auto store = OpenStore(t.options()); }
  InsertDigest(t, "abcd01");
  InsertDigest(t, "abcd02");
  InsertDigest(t, "abcdf0");
  InsertDigest(t, "abce00");
  InsertDigest(t, "ffffff");
  auto admin = t.admin();
  SessionRef r = FindSession(admin, "abcd");
  REQUIRE(r.kind == SessionRef::Kind::Ambiguous);
  REQUIRE(r.candidates.size() == 3);
  CHECK(HexOf(r.candidates[0]).substr(0, 6) == "abcd01");
  CHECK(HexOf(r.candidates[2]).substr(0, 6) == "abcdf0");
  CHECK_FALSE(r.more);
  CHECK(FindSession(admin, "abcd0").kind == SessionRef::Kind::Ambiguous);
  CHECK(FindSession(admin, "abcd02").kind == SessionRef::Kind::Found);
  // Odd lengths and the top of the range: abcdf must not reach abce.., ffff has no upper end.
  CHECK(HexOf(FindSession(admin, "abcdf").digest).substr(0, 6) == "abcdf0");
  CHECK(HexOf(FindSession(admin, "abce").digest).substr(0, 6) == "abce00");
  CHECK(FindSession(admin, "ffff").kind == SessionRef::Kind::Found);
  CHECK(FindSession(admin, "abcc").kind == SessionRef::Kind::NotFound);

  for (int i = 0; i < 12; ++i) InsertDigest(t, "1234" + std::string(1, "0123456789ab"[i]));
  SessionRef many = FindSession(admin, "1234");
  CHECK(many.kind == SessionRef::Kind::Ambiguous);
  CHECK(many.candidates.size() == 10);
  CHECK(many.more);
}

TEST_CASE("get: a session's times and items, live or expired", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string binary("a\0b\xff", 4);
  std::string id = store->Commit(std::nullopt, Sets({{"UserName", "ann"}, {"bin", binary}}), T0).id;
  std::string empty = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  ChangeSet clear;
  clear.changes.push_back({Change::Kind::Clear, {}, {}, {}});
  store->Commit(store->Load(empty, T0), clear, T0);
  auto admin = t.admin();
  auto d = admin.Get(DigestOf(id));
  REQUIRE(d);
  CHECK(d->items == Items{{"UserName", "ann"}, {"bin", binary}});
  CHECK(d->summary.created == T0);
  CHECK(d->summary.expires == T0 + 600);
  CHECK(d->summary.items == 2);
  CHECK(d->summary.bytes == 8 + 3 + 3 + 4);
  auto e = admin.Get(DigestOf(empty));
  REQUIRE(e);
  CHECK(e->items.empty());
  CHECK_FALSE(admin.Get(DigestOf(NewSessionId())));
  CHECK(admin.Get(DigestOf(id)));  // expiry does not hide it: the row is still there
}

TEST_CASE("rm removes sessions and their items, unknown ones are not counted", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string a = store->Commit(std::nullopt, Sets({{"k", "1"}, {"l", "2"}}), T0).id;
  std::string b = store->Commit(std::nullopt, Sets({{"k", "1"}}), T0).id;
  std::string c = store->Commit(std::nullopt, Sets({{"k", "1"}}), T0).id;
  auto admin = t.admin(true);
  CHECK(admin.Remove({DigestOf(a), DigestOf(b), DigestOf(NewSessionId()), DigestOf(a)}) == 2);
  CHECK_FALSE(store->Load(a, T0));
  CHECK_FALSE(store->Load(b, T0));
  CHECK(store->Load(c, T0));
  CHECK(t.query("SELECT count(*) FROM items") == "1");
}

TEST_CASE("logout removes every session holding the item, and only those", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string ann1 = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
  std::string ann2 = store->Commit(std::nullopt, Sets({{"UserName", "ann"}, {"cart", "2"}}), T0).id;
  std::string bob = store->Commit(std::nullopt, Sets({{"UserName", "bob"}}), T0).id;
  std::string annie = store->Commit(std::nullopt, Sets({{"UserName", "annie"}}), T0).id;
  auto admin = t.admin(true);
  CHECK(admin.RemoveWhere({{"UserName", "ann"}}) == 2);
  CHECK_FALSE(store->Load(ann1, T0));
  CHECK_FALSE(store->Load(ann2, T0));
  CHECK(store->Load(bob, T0));
  CHECK(store->Load(annie, T0));
  CHECK(t.query("SELECT count(*) FROM items") == "2");
  CHECK(admin.RemoveWhere({{"UserName", "ann"}}) == 0);
  CHECK(admin.RemoveWhere({{"UserName", "bob"}, {"cart", "2"}}) == 0);
  CHECK_THROWS_AS(admin.RemoveWhere({}), std::invalid_argument);
}

TEST_CASE("logout removes a session regenerated between its scan and its delete", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string ann = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
  std::string regenerated;
  SqliteAdminOptions o = t.admin_options(true);
  // The seam: runs after each scan, before that scan's deletes. The first
  // time, ann's session moves to a new id (a login regenerating it), so the
  // digest the scan found no longer exists.
  o.after_scan_for_testing = [&] {
    if (!regenerated.empty()) return;
    ChangeSet regenerate;
    regenerate.regenerate = true;
    auto moved = store->Commit(store->Load(ann, T0), regenerate, T0);
    REQUIRE(moved.outcome == CommitResult::Outcome::Regenerated);
    regenerated = moved.id;
  };
  SqliteAdmin admin(o);
  CHECK(admin.RemoveWhere({{"UserName", "ann"}}) == 1);
  REQUIRE_FALSE(regenerated.empty());
  CHECK_FALSE(store->Load(regenerated, T0));
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");
}

TEST_CASE("logout removes a session that is regenerated after every scan", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string id = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
  int moves = 0;
  SqliteAdminOptions o = t.admin_options(true);
  o.after_scan_for_testing = [&] {
    ChangeSet regenerate;
    regenerate.regenerate = true;
    auto moved = store->Commit(store->Load(id, T0), regenerate, T0);
    REQUIRE(moved.outcome == CommitResult::Outcome::Regenerated);
    id = moved.id;
    ++moves;
  };
  SqliteAdmin admin(o);
  // The rounds are bounded: the last deletes by the item, under the lock.
  CHECK(admin.RemoveWhere({{"UserName", "ann"}}) == 1);
  CHECK(moves == 4);
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");
}

TEST_CASE("gc removes the expired sessions, a batch per transaction", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  for (int i = 0; i < 5; ++i) store->Commit(std::nullopt, Sets({{"k", "v"}}), T0);
  std::string live = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0 + 500).id;
  auto admin = t.admin(true);
  CHECK(admin.CollectGarbage(T0 + 599, 2) == 0);
  CHECK(admin.CollectGarbage(T0 + 600, 2) == 5);
  CHECK(admin.CollectGarbage(T0 + 600, 2) == 0);
  CHECK(store->Load(live, T0 + 600));
  CHECK(t.query("SELECT count(*) FROM items") == "1");
}

TEST_CASE("gc gives the server's writers the write lock between its batches", "[admin]") {
  TempDb t;
  StoreOptions o = t.options();
  o.synchronous = "OFF";
  testing::InsertSessions(o, 50, T0);  // expired at T0 + 600
  SqliteBackend server(o);  // the running sessiond's connection: another process's, to the admin
  const IdDigest login = DigestOf(NewSessionId());
  std::thread request;
  int batch_no = 0;
  bool login_before_second_batch = false;
  SqliteAdminOptions a = t.admin_options(true);
  // In the first batch (the write lock held): a request commits and waits
  // for the lock in SQLite's busy handler. In the second: was it let in?
  a.during_gc_batch_for_testing = [&] {
    if (++batch_no == 1) {
      std::uint64_t before = Db::BusyWaitsForTesting();
      request = std::thread([&] { server.Write([&](StoreWriter& w) { w.Insert(login, T0 + 700); }); });
      for (int i = 0; i < 10000 && Db::BusyWaitsForTesting() < before + 20; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      REQUIRE(Db::BusyWaitsForTesting() >= before + 20);  // it is waiting, trying again and again
    } else if (batch_no == 2) {
      login_before_second_batch =
          t.query("SELECT count(*) FROM sessions WHERE created = " + std::to_string(T0 + 700)) == "1";
    }
  };
  SqliteAdmin admin(a);
  CHECK(admin.CollectGarbage(T0 + 600, 10) == 50);
  request.join();
  CHECK(batch_no == 6);
  CHECK(login_before_second_batch);
}

TEST_CASE("stats: sessions, items, bytes, the oldest live one, sizes, schema", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  auto admin = t.admin();
  StoreStats empty = admin.Stats(T0);
  CHECK(empty.live == 0);
  CHECK_FALSE(empty.oldest);
  store->Commit(std::nullopt, Sets({{"ab", "cd"}}), T0);                   // expired at T0 + 600
  store->Commit(std::nullopt, Sets({{"UserName", "ann"}, {"x", ""}}), T0 + 100);
  store->Commit(std::nullopt, Sets({{"k", "v"}}), T0 + 200);
  StoreStats st = admin.Stats(T0 + 650);
  CHECK(st.live == 2);
  CHECK(st.expired == 1);
  CHECK(st.items == 4);
  CHECK(st.bytes == 4 + 11 + 1 + 2);
  REQUIRE(st.oldest);
  CHECK(*st.oldest == T0 + 100);
  CHECK(st.schema_version == kSchemaVersion);
  CHECK(st.file_bytes > 0);
  CHECK(st.wal_bytes > 0);  // the store's connection is open: its commits are in the WAL
}

TEST_CASE("the read-only admin never writes, and reads do not wait for a writer", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  auto reader = t.admin(false, 0);  // no busy timeout: any wait would throw
  CHECK_THROWS_AS(reader.Remove({DigestOf(id)}), StoreError);
  CHECK_THROWS_AS(reader.CollectGarbage(T0 + 10000, 10), StoreError);
  CHECK_THROWS_AS(reader.RemoveWhere({{"k", "v"}}), StoreError);
  CHECK(store->Load(id, T0));

  // An operator's shell holds the write lock with a change in flight.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(t.path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE; DELETE FROM items;", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(reader.List({}, T0).size() == 1);
  CHECK(reader.Get(DigestOf(id))->items.size() == 1);  // the committed state
  CHECK(reader.Stats(T0).items == 1);
  CHECK(reader.Check(true).empty());
  auto writer = t.admin(true, 0);
  CHECK_THROWS_AS(writer.Remove({DigestOf(id)}), StoreError);  // a writer does wait, up to its timeout
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

TEST_CASE("a missing file is not created, a foreign one is refused, one finished for a newer sessiond too",
          "[admin]") {
  TempDb t;
  CHECK_THROWS_AS(t.admin(), StoreError);
  CHECK_THROWS_AS(t.admin(true), StoreError);
  CHECK_FALSE(std::filesystem::exists(t.path));
  t.exec("CREATE TABLE other (x)");
  CHECK_THROWS_WITH(t.admin(), Catch::Contains("not a sessiond store"));
  std::filesystem::remove(t.path);
  { auto store = OpenStore(t.options()); }
  t.exec("PRAGMA user_version = 99");  // expanded by a newer member: readable
  CHECK(t.admin().Stats(T0).schema_version == 99);
  t.exec("UPDATE sessiond_schema SET required = 99");  // finished by it: not any more
  CHECK_THROWS_WITH(t.admin(), Catch::Contains("needs a sessiond of schema version 99"));
}

// An older member of a farm (or another process on one file) goes on
// serving a store a newer one expanded; `migrate --finish` waits for it.
// In one process, the older build is this one before the test's steps are
// added (as tests/tools/sessiond_next.cc adds them), and after they are
// taken away again.
TEST_CASE("a rolling upgrade on one file: expand, serve both, finish once the older member is gone", "[admin]") {
  TempDb t;
  SchemaSteps& steps = SqliteSchemaStepsForTesting();
  const int older = steps.known();
  auto old_store = OpenStore(t.options());
  std::string id = old_store->Commit(std::nullopt, Sets({{"k", "1"}}), T0).id;
  old_store->RecordMember({"old:1", "0.1.0", 0, T0, 0}, T0);
  old_store->RecordMember({"gone:2", "0.0.9", 0, T0 - 5000, 0}, T0 - 5000);  // seen long ago
  CHECK(t.admin(true).Finish(T0).outcome == FinishResult::Outcome::Nothing);
  testing::NextSchema next(steps, "CREATE TABLE next_notes (note TEXT); "
                                  "ALTER TABLE items ADD COLUMN next_flag INTEGER NOT NULL DEFAULT 0;");
  {
    UpgradeStatus up = t.admin().Upgrade(T0);
    CHECK(up.level.version == older);
    CHECK(up.pending == std::vector<int>{older + 1});
    FinishResult r = t.admin(true).Finish(T0);  // the store is not expanded yet
    CHECK(r.outcome == FinishResult::Outcome::Refused);
    CHECK_THAT(r.why, Catch::Contains("start this version's sessiond serve"));
  }
  auto new_store = OpenStore(t.options());  // expands
  new_store->RecordMember({"new:3", "0.2.0", 0, T0, 0}, T0);
  // Both serve the same session, either way round.
  auto s = old_store->Load(id, T0 + 1);
  REQUIRE(s);
  CHECK(old_store->Commit(s, Sets({{"k", "2"}}), T0 + 1).outcome == CommitResult::Outcome::Updated);
  s = new_store->Load(id, T0 + 2);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "2"}});
  CHECK(new_store->Commit(s, Sets({{"j", "3"}}), T0 + 2).outcome == CommitResult::Outcome::Updated);
  CHECK(old_store->Load(id, T0 + 3)->items == Items{{"j", "3"}, {"k", "2"}});

  UpgradeStatus up = t.admin().Upgrade(T0 + 3);
  CHECK(up.level.version == older + 1);
  REQUIRE(up.members.size() == 3);
  CHECK(up.members[0].member.name == "gone:2");
  CHECK_FALSE(up.members[0].running);
  CHECK(up.members[1].member.name == "new:3");
  CHECK(up.members[1].member.schema == older + 1);
  CHECK(up.members[2].member.name == "old:1");
  CHECK(up.members[2].member.schema == older);
  CHECK(up.members[2].running);
  FinishResult refused = t.admin(true).Finish(T0 + 3);
  CHECK(refused.outcome == FinishResult::Outcome::Refused);
  CHECK_THAT(refused.why, Catch::Contains("old:1 (0.1.0, schema " + std::to_string(older) + ")"));
  CHECK_THAT(refused.why, !Catch::Contains("gone:2"));
  CHECK(t.query("SELECT count(*) FROM next_notes") == "0");  // nothing changed
  CHECK_THROWS_AS(t.admin(false).Finish(T0 + 3), StoreError);  // a read-only admin writes nothing

  old_store->ForgetMember("old:1");  // it stopped
  FinishResult done = t.admin(true).Finish(T0 + 3);
  CHECK(done.outcome == FinishResult::Outcome::Finished);
  CHECK(done.required == older + 1);
  CHECK(done.steps == 1);
  CHECK(t.admin(true).Finish(T0 + 3).outcome == FinishResult::Outcome::Nothing);
  CHECK(new_store->Load(id, T0 + 4));
  next.Withdraw();  // the older build again
  CHECK_THROWS_WITH(OpenStore(t.options()), Catch::Contains("needs a sessiond of schema version " + std::to_string(older + 1)));
}

TEST_CASE("check: all well, items without a session, an old schema", "[admin]") {
  TempDb t;
  { auto store = OpenStore(t.options()); store->Commit(std::nullopt, Sets({{"k", "v"}}), T0); }
  CHECK(t.admin().Check(false).empty());
  CHECK(t.admin().Check(true).empty());
  t.exec("INSERT INTO items (id_hash, key, value) VALUES (X'00', 'k', 'v')");  // foreign keys off, as in the shell
  auto problems = t.admin().Check(false);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("1 items belong to no session"));
  t.exec("DELETE FROM items WHERE id_hash = X'00'; DROP TRIGGER sessions_rename_items");
  problems = t.admin().Check(false);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("trigger"));
  t.exec("PRAGMA user_version = 1");
  CHECK_THAT(t.admin().Check(false).at(0), Catch::Contains("schema version 1 is older"));
}

TEST_CASE("check reports a corrupt file", "[admin]") {
  TempDb t;
  {
    auto store = OpenStore(t.options());
    for (int i = 0; i < 300; ++i) store->Commit(std::nullopt, Sets({{"UserName", "user" + std::to_string(i)}}), T0);
  }  // the last connection closes: the WAL is checkpointed into the file
  REQUIRE(std::filesystem::file_size(t.path) > 4 * 4096);
  {
    // Garbage over every page but the first (the header and schema).
    std::fstream f(t.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    std::string junk(std::filesystem::file_size(t.path) - 4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  std::vector<std::string> problems;
  try {
    problems = t.admin().Check(false);
  } catch (const StoreError& e) {
    problems.push_back(e.what());  // too broken to open is a failed check too
  }
  CHECK_FALSE(problems.empty());
}

TEST_CASE("backup: a consistent copy, mode 0600 whatever the umask, never over a file", "[admin]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string id = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
  std::string copy = t.dir + "/copy.db";
  mode_t old_mask = ::umask(0);
  t.admin().Backup(copy);
  ::umask(old_mask);
  struct stat st;
  REQUIRE(::stat(copy.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  StoreOptions o = t.options();
  o.db = copy;
  auto restored = OpenStore(o);
  auto s = restored->Load(id, T0 + 1);
  REQUIRE(s);
  CHECK(s->items == Items{{"UserName", "ann"}});

  // An existing file is left as it is.
  std::string other = t.dir + "/other";
  std::ofstream(other) << "precious";
  CHECK_THROWS_WITH(t.admin().Backup(other), Catch::Contains("exists"));
  std::ifstream in(other);
  std::string text;
  in >> text;
  CHECK(text == "precious");
  // A failed backup leaves nothing behind.
  CHECK_THROWS_AS(t.admin().Backup(t.dir + "/no/such/dir/copy.db"), StoreError);
}

TEST_CASE("migration from 1 keeps the sessions and removes only items of no session", "[admin][store]") {
  TempDb t;
  t.exec(kSchemaV1);
  std::string id = NewSessionId();
  std::string hex = HexOf(DigestOf(id));
  t.exec("INSERT INTO sessions VALUES (X'" + hex + "', " + std::to_string(T0) + ", " + std::to_string(T0) + ", " +
         std::to_string(T0 + 600) + ");"
         "INSERT INTO items VALUES (X'" + hex + "', 'UserName', 'ann'), (X'" + hex + "', 'cart', '3');"
         "INSERT INTO items VALUES (X'00', 'orphan', 'left by a shell DELETE without the pragma')");

  // The commands work on the old version as it is, without migrating it.
  CHECK(t.admin().List({}, T0).size() == 1);
  CHECK_THAT(t.admin().Check(false), Catch::VectorContains("schema version 1 is older than this sessiond's (" +
                                                           std::to_string(kSchemaVersion) +
                                                           "): sessiond serve migrates it when it starts"));
  CHECK(t.query("PRAGMA user_version") == "1");

  auto store = OpenStore(t.options());
  CHECK(t.query("PRAGMA user_version") == std::to_string(kSchemaVersion));
  CHECK(t.query("SELECT required FROM sessiond_schema") == "0");
  auto s = store->Load(id, T0 + 1);
  REQUIRE(s);
  CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "3"}});
  // 2 -> 3: the session locks of exclusive mode, for the sessions kept.
  CHECK(store->TryLock(id, "owner", 30, T0 + 1) == SessionStore::LockOutcome::Taken);
  CHECK(s->created == T0);
  CHECK(t.query("SELECT count(*) FROM items") == "2");
  CHECK(t.admin().Check(false).empty());
}

TEST_CASE("from version 2, items follow their session in the sqlite3 shell too", "[admin][store]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string a = store->Commit(std::nullopt, Sets({{"k", "1"}, {"l", "2"}}), T0).id;
  std::string b = store->Commit(std::nullopt, Sets({{"k", "1"}}), T0).id;
  // The shell's connection has PRAGMA foreign_keys off.
  t.exec("DELETE FROM sessions WHERE id_hash = X'" + HexOf(DigestOf(a)) + "'");
  CHECK(t.query("SELECT count(*) FROM items") == "1");
  std::string renamed = NewSessionId();
  t.exec("UPDATE sessions SET id_hash = X'" + HexOf(DigestOf(renamed)) + "' WHERE id_hash = X'" +
         HexOf(DigestOf(b)) + "'");
  auto s = store->Load(renamed, T0);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "1"}});
  CHECK(t.admin().Check(false).empty());

  // And in sessiond's own connections, with the pragma on, nothing changes.
  ChangeSet cs = Sets({{"m", "3"}});
  cs.regenerate = true;
  CommitResult r = store->Commit(s, cs, T0);
  REQUIRE(r.outcome == CommitResult::Outcome::Regenerated);
  CHECK(store->Load(r.id, T0)->items == Items{{"k", "1"}, {"m", "3"}});
  cs = ChangeSet{};
  cs.abandon = true;
  store->Commit(store->Load(r.id, T0), cs, T0);
  CHECK(t.query("SELECT count(*) FROM items") == "0");
}

// A file of schema `version` as this build's first steps make it (each
// shipped step is never edited), holding `id`'s session with `items`.
void OldFile(const TempDb& t, int version, const std::string& id, const Items& items) {
  for (int v = 0; v < version; ++v) t.exec(SqliteSchemaSteps().expand[static_cast<std::size_t>(v)]);
  t.exec("PRAGMA user_version = " + std::to_string(version));
  std::string hex = HexOf(DigestOf(id));
  t.exec("INSERT INTO sessions (id_hash, created, accessed, expires) VALUES (X'" + hex + "', " + std::to_string(T0) +
         ", " + std::to_string(T0) + ", " + std::to_string(T0 + 600) + ")");
  for (const auto& [k, v] : items) t.exec("INSERT INTO items (id_hash, key, value) VALUES (X'" + hex + "', '" + k + "', '" + v + "')");
}

TEST_CASE("migration to item types makes the PHP bridge's json: values JSON items", "[admin][store]") {
  TempDb t;
  std::string id = NewSessionId();
  // What the bridge stored before: non-strings as "json:" and their JSON,
  // a string beginning with "json:" as json:"json:...".
  OldFile(t, kSqliteItemTypesSince - 1, id,
          {{"visits", "json:3"},
           {"cart", R"(json:{"apple":1})"},
           {"note", R"(json:"json:x")"},
           {"odd", "json: not json"},
           {"name", "ann"}});
  t.exec("INSERT INTO items (id_hash, key, value) VALUES (X'" + HexOf(DigestOf(id)) + "', 'bin', X'6a736f6e3a5b315d')");
  // The commands read the old file as it is: strings.
  auto before = t.admin().Get(DigestOf(id));
  REQUIRE(before);
  CHECK(before->items.at("visits") == "json:3");
  CHECK(before->json.empty());

  auto store = OpenStore(t.options());
  CHECK(t.query("PRAGMA user_version") == std::to_string(kSchemaVersion));
  auto s = store->Load(id, T0 + 1);
  REQUIRE(s);
  CHECK(s->items == Items{{"visits", "3"},
                          {"cart", R"({"apple":1})"},
                          {"note", R"("json:x")"},
                          {"odd", "json: not json"},
                          {"name", "ann"},
                          {"bin", "json:[1]"}});  // a blob: not the bridge's (it wrote text)
  CHECK(s->json == JsonKeys{"cart", "note", "visits"});
  CHECK(t.admin().Get(DigestOf(id))->json == JsonKeys{"cart", "note", "visits"});
  CHECK(t.admin().Check(false).empty());
}

TEST_CASE("migration from 2 adds the rotation grace's forwards and keeps the sessions", "[admin][store]") {
  TempDb t;
  std::string id = NewSessionId();
  OldFile(t, 2, id, {{"UserName", "ann"}, {"cart", "3"}});  // version 2 as sessiond shipped it: no forwards
  auto store = OpenStore(t.options());
  CHECK(t.query("PRAGMA user_version") == std::to_string(kSchemaVersion));
  auto s = store->Load(id, T0 + 1);
  REQUIRE(s);
  CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "3"}});
  CHECK(s->created == T0);
  ChangeSet login;
  login.regenerate = true;
  std::string new_id = store->Commit(s, login, T0 + 1).id;
  CHECK(store->Load(id, T0 + 2)->id == new_id);
  CHECK(t.admin().Check(false).empty());
}
