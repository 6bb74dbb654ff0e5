// The operator's commands' interface on a PostgreSQL store (PgAdmin).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "pg_test_db.h"
#include "tests/next_schema.h"
#include "store/postgres/pg_admin.h"
#include "store/postgres/pg_backend.h"
#include "store/postgres/pg_conn.h"

namespace sessiond {
namespace {

using test::TempPgSchema;

PgAdminOptions AdminOn(const TempPgSchema& s, bool writable) {
  PgAdminOptions o;
  o.uri = s.uri();
  o.writable = writable;
  o.server_clock = false;
  return o;
}

struct Fixture {
  TempPgSchema schema;
  PgBackend backend{[&] {
    PgOptions o;
    o.uri = schema.uri();
    o.server_clock = false;
    return o;
  }()};
  bool schema_made = (backend.Connect(), true);  // as serve does at start
  IdDigest Add(std::int64_t now, const Items& items) {
    IdDigest d = DigestOf(NewSessionId());
    backend.Write([&](StoreWriter& w) {
      w.Insert(d, now, {600, 3600}, "");
      for (const auto& [k, v] : items) w.SetItem(d, k, v, ItemType::String);
    });
    return d;
  }
};

TEST_CASE("pg admin: list, show, find, rm, logout, gc and stats", "[postgres]") {
  Fixture f;
  IdDigest alice = f.Add(1000, {{"UserName", "alice"}, {"role", "admin"}});
  IdDigest bob = f.Add(2000, {{"UserName", "bob"}});
  f.Add(10, {});  // expires at 610
  PgAdmin admin(AdminOn(f.schema, true));

  auto live = admin.List({}, 1500);
  REQUIRE(live.size() == 2);
  CHECK(live[0].digest == bob);  // newest first
  CHECK(live[1].digest == alice);
  CHECK(live[1].items == 2);
  CHECK(live[1].bytes == std::string("UserNamealiceroleadmin").size());
  CHECK(admin.List({ListQuery::Which::Expired, {}, 0}, 1500).size() == 1);
  CHECK(admin.List({ListQuery::Which::All, {{"UserName", "alice"}}, 0}, 1500).size() == 1);
  CHECK(admin.List({ListQuery::Which::All, {}, 1}, 1500).size() == 1);

  CHECK(admin.FindByPrefix(HexOf(alice).substr(0, 6), 10) == std::vector<IdDigest>{alice});
  auto shown = admin.Get(alice);
  REQUIRE(shown);
  CHECK(shown->items == Items{{"UserName", "alice"}, {"role", "admin"}});
  CHECK(shown->summary.expires == 1600);
  CHECK_FALSE(admin.Get(DigestOf(NewSessionId())));

  StoreStats st = admin.Stats(1500);
  CHECK(st.live == 2);
  CHECK(st.expired == 1);
  CHECK(st.items == 3);
  CHECK(st.oldest == 1000);
  CHECK(st.schema_version == kPgSchemaVersion);
  CHECK(st.file_bytes > 0);

  CHECK(admin.RemoveWhere({{"UserName", "bob"}}) == 1);
  CHECK(admin.CollectGarbage(1500, 1) == 1);
  CHECK(admin.Remove({alice, alice, bob}) == 1);
  CHECK(admin.Stats(1500).live == 0);
  CHECK(admin.Check(false).empty());
}

TEST_CASE("pg admin: logout removes a session regenerated between its scan and its delete", "[postgres]") {
  Fixture f;
  IdDigest ann = f.Add(1000, {{"UserName", "ann"}});
  IdDigest moved = DigestOf(NewSessionId());
  bool renamed = false;
  PgAdminOptions o = AdminOn(f.schema, true);
  // The seam: runs after each scan, before that scan's deletes. The first
  // time, ann's session moves to a new id (a login regenerating it).
  o.after_scan_for_testing = [&] {
    if (renamed) return;
    f.backend.Write([&](StoreWriter& w) { w.Rename(ann, moved); });
    renamed = true;
  };
  PgAdmin admin(o);
  CHECK(admin.RemoveWhere({{"UserName", "ann"}}) == 1);
  CHECK(renamed);
  CHECK(admin.List({ListQuery::Which::All, {}, 0}, 1500).empty());
}

TEST_CASE("pg admin: logout removes a session that is regenerated after every scan", "[postgres]") {
  Fixture f;
  IdDigest at = f.Add(1000, {{"UserName", "ann"}});
  int moves = 0;
  PgAdminOptions o = AdminOn(f.schema, true);
  o.after_scan_for_testing = [&] {
    IdDigest next = DigestOf(NewSessionId());
    f.backend.Write([&](StoreWriter& w) { w.Rename(at, next); });
    at = next;
    ++moves;
  };
  PgAdmin admin(o);
  // The rounds are bounded: the last deletes by the item, in one statement.
  CHECK(admin.RemoveWhere({{"UserName", "ann"}}) == 1);
  CHECK(moves == 4);
  CHECK(admin.List({ListQuery::Which::All, {}, 0}, 1500).empty());
}

TEST_CASE("pg admin: a read-only admin writes nothing", "[postgres]") {
  Fixture f;
  IdDigest d = f.Add(1000, {{"k", "v"}});
  PgAdmin admin(AdminOn(f.schema, false));
  CHECK_THROWS_AS(admin.Remove({d}), StoreError);
  CHECK_THROWS_AS(admin.RemoveWhere({{"k", "v"}}), StoreError);
  CHECK_THROWS_AS(admin.CollectGarbage(1'000'000, 10), StoreError);
  CHECK(admin.Get(d));
}

TEST_CASE("pg admin: no store, a newer one, and backup are clear errors", "[postgres]") {
  TempPgSchema empty;
  CHECK_THROWS_WITH(PgAdmin(AdminOn(empty, false)), Catch::Contains("no sessiond store"));
  Fixture f;
  pg::Conn c({f.schema.uri(), 2000});
  {
    PgAdmin admin(AdminOn(f.schema, false));
    CHECK_THROWS_WITH(admin.Backup("/tmp/x"), Catch::Contains("pg_dump"));
  }
  c.Exec("UPDATE sessiond_schema SET version = 99");  // expanded by a newer member: readable
  CHECK(PgAdmin(AdminOn(f.schema, false)).Stats(0).schema_version == 99);
  c.Exec("UPDATE sessiond_schema SET required = 99");
  CHECK_THROWS_WITH(PgAdmin(AdminOn(f.schema, false)), Catch::Contains("needs a sessiond of schema version 99"));
}

// As the SQLite case (sqlite_admin_test.cc), on a farm's database.
TEST_CASE("pg admin: a rolling upgrade: expand, serve both, finish once the older member is gone", "[postgres]") {
  Fixture f;  // the older build's schema
  IdDigest d = f.Add(1000, {{"k", "1"}});
  f.backend.RecordMember({"old:1", "0.1.0", 0, 1000, 0}, 1000);
  f.backend.RecordMember({"gone:2", "0.0.9", 0, 1, 0}, 1);
  testing::NextSchema next(PgSchemaStepsForTesting(), "CREATE TABLE next_notes (note text); "
                                                     "ALTER TABLE items ADD COLUMN next_flag integer NOT NULL DEFAULT 0;");
  const int older = next.older();
  PgOptions o;
  o.uri = f.schema.uri();
  o.server_clock = false;
  PgBackend newer(o);
  newer.Connect();  // expands
  newer.RecordMember({"new:3", "0.2.0", 0, 1000, 0}, 1000);
  f.backend.Write([&](StoreWriter& w) { w.SetItem(d, "k", "2", ItemType::String); });  // the older member writes on
  newer.Write([&](StoreWriter& w) { w.SetItem(d, "j", "3", ItemType::String); });
  PgAdmin admin(AdminOn(f.schema, true));
  UpgradeStatus up = admin.Upgrade(1001);
  CHECK(up.level.version == older + 1);
  REQUIRE(up.members.size() == 3);
  CHECK_FALSE(up.members[0].running);  // gone:2
  CHECK(up.members[2].member.schema == older);
  FinishResult refused = admin.Finish(1001);
  CHECK(refused.outcome == FinishResult::Outcome::Refused);
  CHECK_THAT(refused.why, Catch::Contains("old:1"));
  f.backend.ForgetMember("old:1");
  FinishResult done = admin.Finish(1001);
  CHECK(done.outcome == FinishResult::Outcome::Finished);
  CHECK(done.required == older + 1);
  CHECK(admin.Get(d)->items == Items{{"j", "3"}, {"k", "2"}});
  next.Withdraw();  // the older build again
  CHECK_THROWS_WITH(PgBackend(o).Connect(), Catch::Contains("needs a sessiond of schema version"));
}

// Two operators (or a script run twice) finish at once: both read the
// store's level before either takes the lock, and the second, once it has
// the lock, must see that the first finished, not run the contract steps
// again (a step that is not idempotent fails, or worse, applies twice).
TEST_CASE("pg admin: two migrate --finish at once run the contract steps once", "[postgres]") {
  Fixture f;
  testing::NextSchema next(PgSchemaStepsForTesting(), "CREATE TABLE next_notes (note text);");
  PgOptions o;
  o.uri = f.schema.uri();
  o.server_clock = false;
  PgBackend newer(o);
  newer.Connect();  // expands
  // Both finishes wait for the schema lock, held here, after reading the level.
  pg::Conn holder(pg::ConnOptions{f.schema.uri(), 5000});
  const std::string lock = std::to_string(kPgSchemaLock);
  holder.Exec(("SELECT pg_advisory_lock(" + lock + ")").c_str());
  FinishResult results[2];
  std::string errors[2];
  std::vector<std::thread> finishes;
  for (int i = 0; i < 2; ++i)
    finishes.emplace_back([&, i] {
      try {
        results[i] = PgAdmin(AdminOn(f.schema, true)).Finish(1000);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  const std::string waiting =
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND classid = " +
      std::to_string(static_cast<std::uint64_t>(kPgSchemaLock) >> 32) +
      " AND objid = " + std::to_string(static_cast<std::uint64_t>(kPgSchemaLock) & 0xffffffffu);
  std::int64_t n = 0;
  for (int i = 0; i < 400 && n < 2; ++i) {
    holder.Send(waiting.c_str());
    n = holder.Sync().back().int64(0, 0);
    if (n < 2) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  holder.Exec(("SELECT pg_advisory_unlock(" + lock + ")").c_str());
  for (std::thread& t : finishes) t.join();
  // At least the two finishes: the lock is the database's, and a test running
  // beside this one on the same cluster may be starting a store and wait too.
  REQUIRE(n >= 2);
  CHECK(errors[0] == "");
  CHECK(errors[1] == "");
  CHECK(((results[0].outcome == FinishResult::Outcome::Finished) !=
         (results[1].outcome == FinishResult::Outcome::Finished)));
  CHECK((results[0].outcome == FinishResult::Outcome::Nothing || results[1].outcome == FinishResult::Outcome::Nothing));
}

TEST_CASE("pg admin: check reports items without a session and malformed digests", "[postgres]") {
  Fixture f;
  f.Add(1000, {{"k", "v"}});
  pg::Conn c({f.schema.uri(), 2000});
  // What only someone in psql can do: drop the foreign key, then break things.
  c.Exec("ALTER TABLE items DROP CONSTRAINT items_id_hash_fkey; "
         "INSERT INTO items VALUES ('\\x00'::bytea, 'k', 'v'); "
         "INSERT INTO sessions (id_hash, created, accessed, expires) VALUES ('\\x0102'::bytea, 1, 1, 1)");
  PgAdmin admin(AdminOn(f.schema, false));
  auto problems = admin.Check(true);
  REQUIRE(problems.size() == 2);
  CHECK_THAT(problems[0], Catch::Contains("1 items belong to no session"));
  CHECK_THAT(problems[1], Catch::Contains("1 sessions have an id_hash that is not a 32-byte digest"));
}

}  // namespace
}  // namespace sessiond
