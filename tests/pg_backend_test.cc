// What only the PostgreSQL backend has to prove: schema creation by several
// sessionds at once, the server's clock, a connection that dies or a server
// that does not answer, collectors side by side, round trips, and passwords
// kept out of messages. The semantics it shares with SQLite are the
// conformance suite's.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <latch>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "pg_test_db.h"
#include "store/admin.h"
#include "store/postgres/pg_backend.h"
#include "store/postgres/pg_conn.h"
#include "store/session_store.h"

namespace sessiond {
namespace {

using test::TempPgSchema;

PgOptions Opts(const std::string& uri, bool server_clock = false) {
  PgOptions o;
  o.uri = uri;
  o.server_clock = server_clock;
  o.timeout_ms = 2000;
  return o;
}

// One value from a query on a connection of its own.
std::int64_t QueryInt(pg::Conn& c, const char* sql) {
  c.Send(sql);
  pg::Result r = c.Sync().back();
  REQUIRE(r.rows() == 1);
  return r.int64(0, 0);
}

void Create(PgBackend& b, const IdDigest& d, std::int64_t now, const Items& items = {}) {
  b.Write([&](StoreWriter& w) {
    w.Insert(d, now, {}, "");
    for (const auto& [k, v] : items) w.SetItem(d, k, v, ItemType::String);
  });
}

TEST_CASE("pg: items are bytes in, bytes out", "[postgres]") {
  TempPgSchema schema;
  PgBackend b(Opts(schema.uri()));
  std::string id = NewSessionId();
  IdDigest d = DigestOf(id);
  std::string odd("k\0\xff\xfe", 4), value("v\0\x80\n'\"\\", 7);
  Create(b, d, 1000, {{odd, value}, {"plain", "text"}});
  auto s = b.Load(d, id, 1001, {});
  REQUIRE(s);
  CHECK(s->items == Items{{odd, value}, {"plain", "text"}});
  CHECK(s->created == 1000);
  CHECK(s->now == 1001);
}

// The session policy over a PgBackend on the callers' clock (idle 600 s, so
// the last access is due for a refresh after 60 s), without a rotation grace
// unless asked.
struct PgPolicy {
  PgBackend* backend;
  std::unique_ptr<PolicyStore> store;
  explicit PgPolicy(const std::string& uri, SessionLimits limits = {}, std::int64_t grace = 0) {
    StoreTimeouts t;
    t.idle = 600;
    t.absolute = 3600;
    t.grace = grace;
    PgOptions o = Opts(uri);
    auto b = std::make_unique<PgBackend>(o);
    backend = b.get();
    store = std::make_unique<PolicyStore>(std::move(b), t, limits);
  }
  PolicyStore* operator->() { return store.get(); }
};

ChangeSet Set(const std::string& key, const std::string& value) {
  ChangeSet cs;
  cs.changes.push_back({Change::Kind::Set, key, value, {}});
  return cs;
}

TEST_CASE("pg: round trips: a read is one, a new session one, a change one", "[postgres]") {
  TempPgSchema schema;
  SessionLimits limits;
  limits.max_items = 4;
  PgPolicy p(schema.uri(), limits);
  using O = CommitResult::Outcome;
  auto trips = [&, last = p.backend->round_trips()]() mutable {
    auto n = p.backend->round_trips() - last;
    last = p.backend->round_trips();
    return n;
  };

  ChangeSet two = Set("a", "1");
  two.changes.push_back({Change::Kind::Set, "b", "2", {}});
  std::string id = p->Commit(std::nullopt, two, 1000).id;  // BEGIN, INSERT, 2 items, COMMIT
  CHECK(trips() == 1);
  auto s = p->Load(id, 1001);
  REQUIRE(s);
  CHECK(trips() == 1);

  // A change: BEGIN, the one statement (liveness and row lock, the items,
  // the totals against the limits), COMMIT; with the touch when it is due.
  CHECK(p->Commit(s, Set("c", "3"), 1001).outcome == O::Updated);
  CHECK(trips() == 1);
  ChangeSet some;
  some.changes = {{Change::Kind::Remove, "a", {}, {}}, {Change::Kind::Set, "d", "4", {}}};
  CHECK(p->Commit(p->Load(id, 1100), some, 1100).outcome == O::Updated);
  CHECK(trips() == 2);  // the load and the change
  ChangeSet too_many = Set("e", "5");  // 5 items of 4
  too_many.changes.push_back({Change::Kind::Set, "f", "6", {}});
  CHECK_THROWS_AS(p->Commit(p->Load(id, 1100), too_many, 1100), LimitError);
  CHECK(trips() == 2);
  // A read whose last access is due: the touch alone.
  CHECK(p->Commit(p->Load(id, 1200), ChangeSet{}, 1200).outcome == O::Updated);
  CHECK(trips() == 2);
  ChangeSet regenerate = Set("f", "5");
  regenerate.regenerate = true;
  CommitResult moved = p->Commit(p->Load(id, 1300), regenerate, 1300);
  REQUIRE(moved.outcome == O::Regenerated);
  CHECK(trips() == 2);
  // The old id is gone: a write under it is one round trip too, and Gone.
  CHECK(p->Commit(s, Set("g", "6"), 1300).outcome == O::Gone);
  CHECK(trips() == 1);
  ChangeSet logout;
  logout.abandon = true;
  CHECK(p->Commit(p->Load(moved.id, 1301), logout, 1301).outcome == O::Abandoned);
  CHECK(trips() == 2);

  auto gone = p->Load(moved.id, 1302);
  CHECK_FALSE(gone);
  pg::Conn c({schema.uri(), 2000});
  CHECK(QueryInt(c, "SELECT count(*) FROM sessions") == 0);
  CHECK(QueryInt(c, "SELECT count(*) FROM items") == 0);
}

void Terminate(const std::string& uri, int pid);

// Whether the server processes `pids` all wait for a lock (bounded poll:
// 10 s at most).
bool AllWaitForALock(pg::Conn& c, std::vector<int> pids) {
  pg::Statement waiting{"waiting", "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND pid IN ($1::bigint::int, $2::bigint::int)"};
  pids.resize(2, pids.front());
  std::int64_t want = pids[0] == pids[1] ? 1 : 2;
  for (int i = 0; i < 1000; ++i) {
    c.Send(waiting, {pg::Param::Int(pids[0]), pg::Param::Int(pids[1])});
    if (c.Sync().back().int64(0, 0) == want) return true;
    ::usleep(10'000);
  }
  return false;
}

// Holds a session's row lock in a transaction of its own, as a writer
// (of this sessiond, another, or an older one) between its first statement
// and its COMMIT.
struct RowHolder {
  pg::Conn c;
  IdDigest d;
  RowHolder(const std::string& uri, const std::string& id) : c({uri, 5000}), d(DigestOf(id)) {
    c.Send("BEGIN");
    c.Send(pg::Statement{"hold", "SELECT 1 FROM sessions WHERE id_hash = $1 FOR NO KEY UPDATE"},
           {pg::Param::Bytes(d.data(), d.size())});
    REQUIRE(c.Sync().back().rows() == 1);
  }
  // Adds an item, as the writer holding the lock would, and commits.
  void SetAndCommit(const std::string& key, const std::string& value) {
    c.Send(pg::Statement{"add", "INSERT INTO items (id_hash, key, value) VALUES ($1, $2, $3)"},
           {pg::Param::Bytes(d.data(), d.size()), pg::Param::Bytes(key), pg::Param::Bytes(value)});
    c.Send("COMMIT");
    REQUIRE(c.Sync().back().command() == "COMMIT");
  }
};

TEST_CASE("pg: one-statement writers of one session queued behind its row lock see each other's "
          "items: keys merge and the limits stay exact",
          "[postgres]") {
  // Under READ COMMITTED a statement reads from the snapshot it started
  // with: a change whose totals came from that snapshot would miss the items
  // committed while it waited for the row lock, and two writers could both
  // pass a limit that only one of them fits.
  TempPgSchema schema;
  SessionLimits limits;
  const bool room_for_both = GENERATE(true, false);
  limits.max_items = room_for_both ? 4 : 3;  // "start", the holder's "h", then "a" and "b"
  PgPolicy setup(schema.uri(), limits);
  std::string id = setup->Commit(std::nullopt, Set("start", "1"), 1000).id;
  // As two sessionds (another URI: a process groups only its own changes).
  PgPolicy a(schema.uri(), limits), b(test::WithParam(schema.uri(), "application_name=other"), limits);
  auto seen_by_a = a->Load(id, 1001), seen_by_b = b->Load(id, 1001);
  REQUIRE(seen_by_a);
  REQUIRE(seen_by_b);

  RowHolder holder(schema.uri(), id);
  std::string outcome[2];
  auto write = [](PgPolicy& p, std::optional<Session> seen, std::string key, std::string& out) {
    try {
      CommitResult r = p->Commit(seen, Set(key, "x"), 1001);
      out = r.outcome == CommitResult::Outcome::Updated ? "updated" : "other";
    } catch (const LimitError&) {
      out = "limit";
    } catch (const std::exception& e) {
      out = e.what();
    }
  };
  std::thread ta(write, std::ref(a), seen_by_a, "a", std::ref(outcome[0]));
  std::thread tb(write, std::ref(b), seen_by_b, "b", std::ref(outcome[1]));
  pg::Conn observer({schema.uri(), 5000});
  bool both_wait = AllWaitForALock(observer, {a.backend->backend_pid(), b.backend->backend_pid()});
  holder.SetAndCommit("h", "x");
  ta.join();
  tb.join();
  REQUIRE(both_wait);

  auto s = setup->Load(id, 1002);
  REQUIRE(s);
  if (room_for_both) {
    CHECK(outcome[0] == "updated");
    CHECK(outcome[1] == "updated");
    CHECK(s->items == Items{{"a", "x"}, {"b", "x"}, {"h", "x"}, {"start", "1"}});
  } else {
    // Exactly one fits, whichever got the lock first.
    std::vector<std::string> got{outcome[0], outcome[1]};
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"limit", "updated"});
    CHECK(s->items.size() == 3);
    CHECK(s->items.count("h") == 1);
    CHECK(s->items.count(outcome[0] == "updated" ? "a" : "b") == 1);
  }
}

TEST_CASE("pg: changes of one session from several workers at once share one transaction, each "
          "on its own under the limits",
          "[postgres]") {
  TempPgSchema schema;
  SessionLimits limits;
  limits.max_items = 4;  // "start", the holder's "h", then two of "a", "b" and "c"
  PgPolicy setup(schema.uri(), limits);
  std::string id = setup->Commit(std::nullopt, Set("start", "1"), 1000).id;
  PgPolicy workers[3] = {PgPolicy(schema.uri(), limits), PgPolicy(schema.uri(), limits),
                         PgPolicy(schema.uri(), limits)};
  std::optional<Session> seen[3];
  std::int64_t trips[3];
  for (int i = 0; i < 3; ++i) {
    seen[i] = workers[i]->Load(id, 1001);
    REQUIRE(seen[i]);
    trips[i] = workers[i].backend->round_trips();
  }
  RowHolder holder(schema.uri(), id);
  std::string outcome[3];
  auto write = [&](int i) {
    try {
      CommitResult r = workers[i]->Commit(seen[i], Set(std::string(1, static_cast<char>('a' + i)), "x"), 1001);
      outcome[i] = r.outcome == CommitResult::Outcome::Updated ? "updated" : "other";
    } catch (const LimitError&) {
      outcome[i] = "limit";
    } catch (const std::exception& e) {
      outcome[i] = e.what();
    }
  };
  // The first one's transaction waits for the row lock; the two that come
  // meanwhile queue for the next, in this process.
  std::thread first(write, 0);
  pg::Conn observer({schema.uri(), 5000});
  bool waits = AllWaitForALock(observer, {workers[0].backend->backend_pid()});
  std::thread second(write, 1), third(write, 2);
  bool queued = false;
  for (int i = 0; i < 1000 && !(queued = PgBackend::queued_changes() == 2); ++i) ::usleep(10'000);
  holder.SetAndCommit("h", "x");
  first.join();
  second.join();
  third.join();
  REQUIRE(waits);
  REQUIRE(queued);

  CHECK(outcome[0] == "updated");
  std::vector<std::string> rest{outcome[1], outcome[2]};
  std::sort(rest.begin(), rest.end());
  CHECK(rest == std::vector<std::string>{"limit", "updated"});
  CHECK(workers[0].backend->round_trips() - trips[0] == 1);
  CHECK(workers[1].backend->round_trips() - trips[1] + workers[2].backend->round_trips() - trips[2] == 1);
  auto s = setup->Load(id, 1002);
  REQUIRE(s);
  CHECK(s->items.size() == 4);
  CHECK(s->items.count("a") == 1);
  CHECK(s->items.count("h") == 1);
}

TEST_CASE("pg: a change whose statement fails writes nothing, not even the touch, and the "
          "connection serves the next",
          "[postgres]") {
  TempPgSchema schema;
  PgPolicy p(schema.uri());
  std::string id = p->Commit(std::nullopt, Set("k", "v"), 1000).id;
  pg::Conn c({schema.uri(), 2000});
  // What a failure half-way through looks like: the items' INSERT fails
  // after the touch and the removal ran.
  c.Exec("ALTER TABLE items ADD CONSTRAINT no_bad_key CHECK (key <> '\\x626164'::bytea)");  // 'bad'
  ChangeSet cs = Set("ok", "1");
  cs.changes.push_back({Change::Kind::Remove, "k", {}, {}});
  cs.changes.push_back({Change::Kind::Set, "bad", "1", {}});
  CHECK_THROWS_AS(p->Commit(p->Load(id, 1100), cs, 1100), StoreError);
  auto s = p->Load(id, 1101);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "v"}});
  CHECK(s->accessed == 1000);
  CHECK(p->Commit(s, Set("ok", "1"), 1101).outcome == CommitResult::Outcome::Updated);
  CHECK(p->Load(id, 1102)->items == Items{{"k", "v"}, {"ok", "1"}});
}

TEST_CASE("pg: a connection lost during a one-round-trip change is a failure, outcome unknown, "
          "and nothing was written",
          "[postgres]") {
  TempPgSchema schema;
  PgPolicy p(schema.uri());
  std::string id = p->Commit(std::nullopt, Set("k", "v"), 1000).id;
  auto seen = p->Load(id, 1001);
  RowHolder holder(schema.uri(), id);  // the change waits in its statement...
  int pid = p.backend->backend_pid();
  std::string error;
  bool busy = false;
  std::thread writer([&] {
    try {
      p->Commit(seen, Set("new", "1"), 1001);
    } catch (const StoreError& e) {
      error = e.what();
      busy = e.busy();
    }
  });
  pg::Conn observer({schema.uri(), 5000});
  bool waits = AllWaitForALock(observer, {pid});
  Terminate(schema.uri(), pid);  // ...when its connection dies
  writer.join();
  REQUIRE(waits);
  CHECK(busy);
  CHECK_THAT(error, Catch::Contains("outcome unknown"));
  holder.c.Send("ROLLBACK");
  holder.c.Sync();
  auto s = p->Load(id, 1002);  // a new connection
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "v"}});
}

// A database of schema version 1 as sessiond 0.1 made it (this build's first
// step, never edited since), holding `id`'s session with k = v.
// A database of schema `version` as sessiond's shipped steps made it, with
// the session `id` holding k = v.
void OldDatabase(pg::Conn& c, const std::string& id, int version = 1) {
  for (int v = 0; v < version; ++v) c.Exec(PgSchemaSteps().expand[static_cast<std::size_t>(v)].c_str());
  const std::string hex = HexOf(DigestOf(id));
  c.Exec(("INSERT INTO sessiond_schema (version) VALUES (" + std::to_string(version) + "); "
          "INSERT INTO sessions VALUES ('\\x" + hex + "'::bytea, 1000, 1000, 1600); "
          "INSERT INTO items VALUES ('\\x" + hex + "'::bytea, 'k'::bytea, 'v'::bytea)").c_str());
}

TEST_CASE("pg: a database of schema version 1 migrates with its sessions, and records members", "[postgres]") {
  TempPgSchema schema;
  pg::Conn c({schema.uri(), 2000});
  std::string id = NewSessionId();
  OldDatabase(c, id);
  PgPolicy after(schema.uri());
  auto s = after->Load(id, 1001);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "v"}});
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
  CHECK(QueryInt(c, "SELECT count(*) FROM sessiond_schema") == 1);
  CHECK(QueryInt(c, "SELECT max(required) FROM sessiond_schema") == 0);
  after->RecordMember({"m:1", "0.1.0", 0, 1000, 0}, 1001);
  CHECK(QueryInt(c, ("SELECT count(*) FROM sessiond_members WHERE schema = " + std::to_string(kPgSchemaVersion)).c_str()) == 1);
  after->ForgetMember("m:1");
  CHECK(QueryInt(c, "SELECT count(*) FROM sessiond_members") == 0);
}

TEST_CASE("pg: the change function is created when missing, without a new schema version", "[postgres]") {
  // A database set up by an older sessiond (version 1, no function): a
  // newer one adds it, and older ones, which never call it, still open it.
  TempPgSchema schema;
  {
    PgBackend first(Opts(schema.uri()));
    first.Connect();  // a backend connects when first used: this sets the schema up
  }
  pg::Conn c({schema.uri(), 2000});
  c.Exec("DROP FUNCTION sessiond_change_1; DROP FUNCTION sessiond_change_2");
  PgPolicy p(schema.uri());
  std::string id = p->Commit(std::nullopt, Set("k", "v"), 1000).id;
  CHECK(p->Commit(p->Load(id, 1001), Set("k", "w"), 1001).outcome == CommitResult::Outcome::Updated);
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
}

TEST_CASE("pg: migration from 1 adds the session locks and keeps the sessions", "[postgres]") {
  TempPgSchema schema;
  pg::Conn c({schema.uri(), 2000});
  std::string id = NewSessionId();
  OldDatabase(c, id);  // version 1: no locks' table
  PgPolicy p(schema.uri());
  auto s = p->Load(id, 1001);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "v"}});
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
  CHECK(p->TryLock(id, "owner", 30, 1001) == SessionStore::LockOutcome::Taken);
  CHECK(p->CommitHolding(p->Load(id, 1001), Set("k", "w"), 1001, "owner").outcome ==
        CommitResult::Outcome::Updated);
}

TEST_CASE("pg: migration to item types makes the PHP bridge's json: values JSON items", "[postgres]") {
  TempPgSchema schema;
  pg::Conn c({schema.uri(), 2000});
  // The last version without types, as sessiond shipped it (its k = v aside).
  std::string id = NewSessionId();
  OldDatabase(c, id, kPgItemTypesSince - 1);
  const std::string session = "'\\x" + HexOf(DigestOf(id)) + "'::bytea";
  c.Exec(("DELETE FROM items; "
          "INSERT INTO items VALUES (" + session + ", 'visits', 'json:3'), (" + session +
          ", 'cart', 'json:{\"apple\":1}'), (" + session + ", 'note', 'json:\"json:x\"'), (" + session +
          ", 'odd', 'json: not json'), (" + session + ", 'name', 'ann'), (" + session +
          ", 'bin', '\\x6a736f6e3aff'::bytea)").c_str());
  PgPolicy p(schema.uri());
  auto s = p->Load(id, 1001);
  REQUIRE(s);
  CHECK(s->items == Items{{"visits", "3"},
                          {"cart", R"({"apple":1})"},
                          {"note", R"("json:x")"},
                          {"odd", "json: not json"},
                          {"name", "ann"},
                          {"bin", std::string("json:\xff", 6)}});
  CHECK(s->json == JsonKeys{"cart", "note", "visits"});
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
}

TEST_CASE("pg: two stores starting at once on an empty database create the schema once", "[postgres]") {
  TempPgSchema schema;
  std::latch go(2);
  std::atomic<int> made{0};
  std::string error;
  auto start = [&] {
    go.arrive_and_wait();
    try {
      PgBackend b(Opts(schema.uri()));
      b.Connect();
      ++made;
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  std::thread t1(start), t2(start);
  t1.join();
  t2.join();
  CHECK(error == "");
  CHECK(made == 2);
  pg::Conn c({schema.uri(), 2000});
  CHECK(QueryInt(c, "SELECT count(*) FROM sessiond_schema") == 1);
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
}

TEST_CASE("pg: a schema a newer sessiond expanded is served, one it finished is refused and left alone",
          "[postgres]") {
  TempPgSchema schema;
  { PgBackend(Opts(schema.uri())).Connect(); }
  pg::Conn c({schema.uri(), 2000});
  c.Exec("UPDATE sessiond_schema SET version = 99");
  { PgBackend(Opts(schema.uri())).Connect(); }
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == 99);
  c.Exec("UPDATE sessiond_schema SET required = 99");
  try {
    PgBackend(Opts(schema.uri())).Connect();
    FAIL("opened a schema finished for a newer sessiond");
  } catch (const StoreError& e) {
    CHECK_THAT(e.what(), Catch::Contains("needs a sessiond of schema version 99"));
    CHECK_FALSE(e.busy());
  }
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == 99);
}

// Schema version 1, as the PostgreSQL store shipped it before sites.
TEST_CASE("pg: a store of the schema before sites migrates with its sessions on the default site", "[postgres]") {
  TempPgSchema schema;
  std::string id = NewSessionId();
  {
    pg::Conn c({schema.uri(), 2000});
    OldDatabase(c, id, kPgSitesSchemaVersion - 1);
  }
  PgPolicy p(schema.uri());
  auto s = p->Load(id, 1001);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "v"}});
  CHECK_FALSE(p->Load(id, 1001, SiteScope{"shop", std::nullopt}));
  pg::Conn c({schema.uri(), 2000});
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
  CHECK(QueryInt(c, "SELECT count(*) FROM sessions WHERE site = ''") == 1);
}

TEST_CASE("pg: by default the server's clock decides, not the caller's", "[postgres]") {
  TempPgSchema schema;
  PgBackend server(Opts(schema.uri(), true));
  PgBackend caller(Opts(schema.uri(), false));
  std::string id = NewSessionId();
  IdDigest d = DigestOf(id);
  std::int64_t t0 = std::time(nullptr);
  // A machine whose clock says 1970: with its clock the session would be
  // created expired at once.
  Create(server, d, 1);
  std::int64_t t1 = std::time(nullptr);
  // A machine whose clock says 2096: with its clock the session would be long dead.
  auto s = server.Load(d, id, 4'000'000'000, {});
  REQUIRE(s);
  // The server runs on this machine: its clock and ours agree.
  CHECK(s->created >= t0);
  CHECK(s->created <= t1);
  CHECK(s->now >= s->created);
  // The same row, judged by the callers' clocks, is dead in 2096...
  CHECK_FALSE(caller.Load(d, id, 4'000'000'000, {}));
  // ...and so collected by a collector on that clock, but not by one on the server's.
  CHECK(server.CollectGarbage(4'000'000'000, 100) == 0);
  CHECK(server.CountLive(1) == 1);
  CHECK(caller.CollectGarbage(4'000'000'000, 100) == 1);
}

// Kills the server process `pid` of another connection, and waits (up to
// 5 s) until it has gone.
void Terminate(const std::string& uri, int pid) {
  pg::Conn killer({uri, 2000});
  killer.Send(pg::Statement{"kill", "SELECT pg_terminate_backend($1::bigint::int, 5000)"},
              {pg::Param::Int(pid)});
  REQUIRE(killer.Sync().back().int64(0, 0) == 1);
}

TEST_CASE("pg: a connection killed mid-transaction fails that call, commits nothing, and the next "
          "call reconnects",
          "[postgres]") {
  TempPgSchema schema;
  PgBackend b(Opts(schema.uri()));
  std::string id = NewSessionId();
  IdDigest d = DigestOf(id);
  Create(b, d, 1000);
  int pid = b.backend_pid();
  REQUIRE(pid != 0);
  try {
    b.Write([&](StoreWriter& w) {
      REQUIRE(w.Touch(d, 1500, {}));  // the transaction is open on the server
      Terminate(schema.uri(), pid);
      w.SetItem(d, "k", "v", ItemType::String);
      w.Delete(d);
    });
    FAIL("a write on a dead connection succeeded");
  } catch (const StoreError& e) {
    CHECK(e.busy());
    CHECK_THAT(e.what(), Catch::Contains("outcome unknown"));
  }
  PgBackend observer(Opts(schema.uri()));
  CHECK(observer.Holds(d));
  // Back without restarting anything: a new connection, statements prepared again.
  auto s = b.Load(d, id, 1501, {});
  REQUIRE(s);
  CHECK(s->items.empty());
  CHECK(s->accessed == 1000);
  CHECK(b.backend_pid() != pid);
}

TEST_CASE("pg: a connection killed between calls is replaced before the next one", "[postgres]") {
  // What a database restart or failover does to every idle worker's
  // connection: the next request must not fail for it.
  TempPgSchema schema;
  PgBackend b(Opts(schema.uri()));
  std::string id = NewSessionId();
  IdDigest d = DigestOf(id);
  Create(b, d, 1000);
  int pid = b.backend_pid();
  Terminate(schema.uri(), pid);
  REQUIRE(b.Load(d, id, 1001, {}));
  CHECK(b.backend_pid() != pid);
  Terminate(schema.uri(), b.backend_pid());
  Create(b, DigestOf(NewSessionId()), 1000, {{"k", "v"}});
}

TEST_CASE("pg: a server that accepts but never answers is busy within the timeout", "[postgres]") {
  // A listening socket nobody accepts on: the TCP handshake completes (the
  // backlog), and then nothing. libpq's connect_timeout must end the wait.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  std::string uri = "postgresql://sessiond:Sekr3tPassw0rd@127.0.0.1:" + std::to_string(ntohs(a.sin_port)) +
                    "/sessions";
  PgOptions o = Opts(uri);
  o.timeout_ms = 1000;
  try {
    PgBackend(o).Connect();
    FAIL("connected to a silent server");
  } catch (const StoreError& e) {
    CHECK(e.busy());
    CHECK_THAT(e.what(), !Catch::Contains("Sekr3tPassw0rd"));
  }
  ::close(fd);
}

TEST_CASE("pg: a server that stops answering mid-request is busy, and is used again when back",
          "[postgres]") {
  TempPgSchema schema;
  PgOptions o = Opts(schema.uri());
  o.timeout_ms = 500;
  PgBackend b(o);
  std::string id = NewSessionId();
  IdDigest d = DigestOf(id);
  Create(b, d, 1000);
  int pid = b.backend_pid();
  // Its server process frozen: no statement_timeout can fire there, so only
  // sessiond's own bound on waiting ends the request.
  REQUIRE(::kill(pid, SIGSTOP) == 0);
  bool busy = false;
  try {
    b.Load(d, id, 1001, {});
  } catch (const StoreError& e) {
    busy = e.busy();
  }
  ::kill(pid, SIGCONT);
  CHECK(busy);
  REQUIRE(b.Load(d, id, 1001, {}));
  CHECK(b.backend_pid() != pid);
}

TEST_CASE("pg: collectors side by side delete each session once and never wait on a lock",
          "[postgres]") {
  TempPgSchema schema;
  PgBackend a(Opts(schema.uri())), b(Opts(schema.uri()));
  std::vector<IdDigest> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(DigestOf(NewSessionId()));
  a.Write([&](StoreWriter& w) {
    for (const auto& d : ids) {
      w.Insert(d, 100, {}, "");
      w.SetItem(d, "k", "v", ItemType::String);
    }
  });

  // A request holds the first session (its transaction is open): the
  // collectors must go past it, not wait for it.
  pg::Conn holder({schema.uri(), 2000});
  holder.Send("BEGIN");
  holder.Send(pg::Statement{"hold", "SELECT 1 FROM sessions WHERE id_hash = $1 FOR NO KEY UPDATE"},
              {pg::Param::Bytes(ids[0].data(), ids[0].size())});
  REQUIRE(holder.Sync().back().rows() == 1);

  std::atomic<std::size_t> total{0};
  std::string error;
  std::latch go(2);
  auto collect = [&](PgBackend& s) {
    go.arrive_and_wait();
    try {
      while (std::size_t n = s.CollectGarbage(1'000'000, 7)) total += n;
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  std::thread t1(collect, std::ref(a)), t2(collect, std::ref(b));
  t1.join();
  t2.join();
  CHECK(error == "");
  CHECK(total == 199);
  pg::Conn c({schema.uri(), 2000});
  CHECK(QueryInt(c, "SELECT count(*) FROM sessions") == 1);
  holder.Send("ROLLBACK");
  holder.Sync();
  CHECK(a.CollectGarbage(1'000'000, 7) == 1);
  CHECK(QueryInt(c, "SELECT count(*) FROM items") == 0);
}

TEST_CASE("pg: no password in any error message", "[postgres]") {
  std::string base = test::TestPgUri();  // postgresql://sessiond@HOST:PORT/sessions?passfile=...
  std::string host = base.substr(base.find('@') + 1);
  host = host.substr(0, host.find('/'));
  SECTION("a wrong password in the URI") {
    try {
      PgBackend(Opts("postgresql://sessiond:Sekr3tPassw0rd@" + host + "/sessions")).Connect();
      FAIL("connected with a wrong password");
    } catch (const StoreError& e) {
      CHECK_THAT(e.what(), Catch::Contains("password authentication failed"));
      CHECK_THAT(e.what(), !Catch::Contains("Sekr3tPassw0rd"));
      CHECK_FALSE(e.busy());  // a settings problem, which waiting does not mend
    }
  }
  SECTION("a wrong password as a parameter") {
    try {
      PgBackend(Opts("postgresql://sessiond@" + host + "/sessions?password=Sekr3tPassw0rd")).Connect();
      FAIL("connected with a wrong password");
    } catch (const StoreError& e) {
      CHECK_THAT(e.what(), !Catch::Contains("Sekr3tPassw0rd"));
    }
  }
  SECTION("a URI libpq cannot parse, with the password in it") {
    try {
      PgBackend(Opts("postgresql://sessiond:Sekr3t%zzPassw0rd@" + host + "/sessions?bogus=%zzSekr3t")).Connect();
      FAIL("parsed a malformed URI");
    } catch (const StoreError& e) {
      CHECK_THAT(e.what(), !Catch::Contains("Sekr3t"));
      CHECK_FALSE(e.busy());
    }
  }
}

}  // namespace
}  // namespace sessiond

namespace sessiond {
namespace {

// A cluster of the test's own (tests/tools/pg_cluster), stopped by its
// destructor, for settings no other test may see.
struct OwnCluster {
  std::string tool = SESSIOND_PG_CLUSTER, dir;
  OwnCluster() {
    char d[] = "/tmp/sessiond-pg-own.XXXXXX";
    REQUIRE(::mkdtemp(d));
    dir = d;
    REQUIRE(std::system(("'" + tool + "' start '" + dir + "' >/dev/null").c_str()) == 0);
  }
  ~OwnCluster() {
    std::system(("'" + tool + "' stop '" + dir + "'; rm -rf '" + dir + "'").c_str());
  }
  std::string Read(const char* what) const {
    std::string cmd = "'" + tool + "' " + what + " '" + dir + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[1024] = {};
    std::string out = p && std::fgets(buf, sizeof buf, p) ? buf : "";
    if (p) ::pclose(p);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
};

TEST_CASE("pg: a COMMIT whose wait for the synchronous standby was cancelled is not a success",
          "[postgres]") {
  OwnCluster cluster;
  std::string uri = cluster.Read("uri");
  { PgBackend(Opts(uri)).Connect(); }
  pg::Conn admin({cluster.Read("admin-uri"), 5000});
  // A synchronous standby that never comes: every COMMIT waits for it.
  admin.Exec("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
  admin.Exec("SELECT pg_reload_conf()");
  std::string seen;
  for (int i = 0; i < 100 && seen != "nobody"; ++i) {  // the reload is asynchronous
    pg::Conn c({uri, 5000});
    c.Send("SHOW synchronous_standby_names");
    seen = std::string(c.Sync().back().bytes(0, 0));
    if (seen != "nobody") ::usleep(50'000);
  }
  REQUIRE(seen == "nobody");

  PgBackend b(Opts(uri));
  b.Holds(DigestOf(NewSessionId()));  // connected: its server process is known
  int pid = b.backend_pid();
  // Once the COMMIT waits for the standby, cancel the wait, as an operator
  // (or a server shutting down) would: the transaction has committed here,
  // and the server says that it is not on the standby with a WARNING only.
  std::thread canceller([&] {
    pg::Conn c({cluster.Read("admin-uri"), 5000});
    pg::Statement waiting{"waiting", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::bigint::int "
                                     "AND wait_event = 'SyncRep'"};
    for (int i = 0; i < 200; ++i) {
      c.Send(waiting, {pg::Param::Int(pid)});
      if (c.Sync().back().int64(0, 0) == 1) break;
      ::usleep(20'000);
    }
    c.Send(pg::Statement{"cancel", "SELECT pg_cancel_backend($1::bigint::int)"}, {pg::Param::Int(pid)});
    c.Sync();
  });
  IdDigest d = DigestOf(NewSessionId());
  std::string error;
  bool busy = false;
  try {
    Create(b, d, 1000, {{"k", "v"}});
  } catch (const StoreError& e) {
    error = e.what();
    busy = e.busy();
  }
  canceller.join();
  CHECK_THAT(error, Catch::Contains("COMMIT not confirmed") && Catch::Contains("synchronous replication"));
  CHECK(busy);
  // It is there on this server: only the caller's answer was in doubt.
  CHECK(b.Holds(d));
}

}  // namespace
}  // namespace sessiond

#include "store/postgres/pg_pool.h"

namespace sessiond {
namespace {

pg::PoolOptions PoolOpts(const std::string& uri, std::size_t size, int timeout_ms = 2000) {
  pg::PoolOptions o;
  o.conn = pg::ConnOptions{uri, timeout_ms};
  o.size = size;
  o.init = [](pg::Conn& c) { MigratePgSchema(c); };
  return o;
}

std::string Show(pg::Conn& c, const char* setting) {
  c.Send((std::string("SHOW ") + setting).c_str());
  return std::string(c.Sync().back().bytes(0, 0));
}

TEST_CASE("pg: a timeout of 0 never turns the server's timeouts off", "[postgres]") {
  // statement_timeout = 0 and lock_timeout = 0 mean "no limit" to the
  // server: --busy-timeout 0 (wait for nobody) must not become that.
  TempPgSchema schema;
  pg::Conn c({schema.uri(), 0});
  CHECK(Show(c, "statement_timeout") == "1s");
  CHECK(Show(c, "lock_timeout") == "1ms");
  // A row lock another transaction holds: refused at once, busy.
  PgBackend b(Opts(schema.uri()));
  IdDigest d = DigestOf(NewSessionId());
  Create(b, d, 1000);
  pg::Conn holder({schema.uri(), 2000});
  holder.Send("BEGIN");
  holder.Send(pg::Statement{"hold", "SELECT 1 FROM sessions WHERE id_hash = $1 FOR UPDATE"},
              {pg::Param::Bytes(d.data(), d.size())});
  REQUIRE(holder.Sync().back().rows() == 1);
  PgOptions zero = Opts(schema.uri());
  zero.timeout_ms = 0;
  PgBackend waiter(zero);
  try {
    waiter.Write([&](StoreWriter& w) { w.Touch(d, 1001, {}); });
    FAIL("wrote through another's lock");
  } catch (const StoreError& e) {
    CHECK(e.busy());
    CHECK_THAT(e.what(), Catch::Contains("55P03"));  // lock_timeout, not a wait of ours
  }
  holder.Send("ROLLBACK");
  holder.Sync();
}

TEST_CASE("pg: many threads share a pool of two connections, and the server sees two", "[postgres]") {
  TempPgSchema schema;
  auto pool = std::make_shared<pg::Pool>(PoolOpts(schema.uri(), 2));
  PgOptions o = Opts(schema.uri());
  o.pool = pool;
  std::vector<IdDigest> ids;
  {
    PgBackend b(o);
    for (int i = 0; i < 8; ++i) {
      ids.push_back(DigestOf(NewSessionId()));
      Create(b, ids.back(), 1000, {{"k", "v"}});
    }
  }
  std::atomic<int> ok{0};
  std::string error;
  std::mutex error_mutex;
  std::set<int> pids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      PgBackend b(o);  // one per thread, as the workers
      for (int i = 0; i < 25; ++i) {
        try {
          b.Write([&](StoreWriter& w) {
            REQUIRE(w.Touch(ids[t], 1001 + i, {}));
            w.SetItem(ids[t], "n", std::to_string(i), ItemType::String);
          });
          REQUIRE(b.Load(ids[t], "", 1001 + i, {}));
          ++ok;
          std::lock_guard lock(error_mutex);
          pids.insert(b.backend_pid());
        } catch (const std::exception& e) {
          std::lock_guard lock(error_mutex);
          error = e.what();
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(error == "");
  CHECK(ok == 200);
  CHECK(pids.size() <= 2);
  CHECK(pool->stats().open <= 2);
}

TEST_CASE("pg: a call that finds every connection in use waits, up to the timeout", "[postgres]") {
  TempPgSchema schema;
  pg::Pool pool(PoolOpts(schema.uri(), 1, 300));
  std::optional<pg::Pool::Lease> held(pool.Acquire());
  try {
    pool.Acquire();
    FAIL("a second connection from a pool of one");
  } catch (const StoreError& e) {
    CHECK(e.busy());
    CHECK_FALSE(e.reported());
    CHECK_THAT(e.what(), Catch::Contains("connections busy"));
  }
  // Given back meanwhile: the waiting caller gets it.
  std::thread giver([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    held.reset();
  });
  pg::Pool::Lease got = pool.Acquire();
  giver.join();
  CHECK(got->connected());
}

// The backend process ids of the connections of `app` (application_name).
std::int64_t Connections(pg::Conn& admin, const std::string& app) {
  admin.Send(pg::Statement{"conns", "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"},
             {pg::Param::Text(app)});
  return admin.Sync().back().int64(0, 0);
}

TEST_CASE("pg: a connection found dead closes the pool's other idle ones with it", "[postgres]") {
  TempPgSchema schema;
  std::string app = "sessiond_pool_" + schema.name();
  pg::Pool pool(PoolOpts(test::WithParam(schema.uri(), "application_name=" + app), 3));
  {
    pg::Pool::Lease a = pool.Acquire(), b = pool.Acquire(), c = pool.Acquire();
  }
  REQUIRE(pool.stats().open == 3);
  pg::Conn admin({schema.uri(), 2000});
  admin.Send(pg::Statement{"kill_app", "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                                       "WHERE application_name = $1"},
             {pg::Param::Text(app)});
  REQUIRE(admin.Sync().back().int64(0, 0) == 3);
  // What a server that shut down or failed over does to every idle
  // connection: the first caller finds out for all of them.
  {
    pg::Pool::Lease l = pool.Acquire();
    CHECK(pool.stats().open == 1);
    l->Send("SELECT 1");
    l->Sync();
  }
  CHECK(pool.stats().open == 1);
  CHECK(Connections(admin, app) == 1);
}

TEST_CASE("pg: connections unused for max_idle are closed", "[postgres]") {
  TempPgSchema schema;
  pg::PoolOptions po = PoolOpts(schema.uri(), 2);
  po.max_idle = std::chrono::milliseconds(100);
  pg::Pool pool(po);
  {
    pg::Pool::Lease a = pool.Acquire(), b = pool.Acquire();
  }
  REQUIRE(pool.stats().open == 2);
  // One kept busy, the other left alone: it goes, bounded by 5 s.
  for (int i = 0; i < 500 && pool.stats().open > 1; ++i) {
    pool.Acquire();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(pool.stats().open == 1);
}

TEST_CASE("pg: a pool larger than the role may connect shrinks to what it has and callers wait",
          "[postgres]") {
  OwnCluster cluster;
  std::string uri = cluster.Read("uri");
  pg::Conn admin({cluster.Read("admin-uri"), 5000});
  admin.Exec("ALTER ROLE sessiond CONNECTION LIMIT 2");
  pg::PoolOptions po = PoolOpts(uri, 6, 5000);
  po.regrow_after = std::chrono::minutes(5);  // not within this test
  auto pool = std::make_shared<pg::Pool>(po);
  PgOptions o = Opts(uri);
  o.pool = pool;
  o.timeout_ms = 5000;
  std::atomic<int> ok{0};
  std::string error;
  std::mutex error_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      PgBackend b(o);
      for (int i = 0; i < 20; ++i) {
        try {
          IdDigest d = DigestOf(NewSessionId());
          Create(b, d, 1000, {{"k", "v"}});
          if (b.Holds(d)) ++ok;
        } catch (const std::exception& e) {
          std::lock_guard lock(error_mutex);
          error = e.what();
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(error == "");
  CHECK(ok == 120);
  CHECK(pool->stats().limit >= 1);
  CHECK(pool->stats().limit <= 2);
  CHECK(pool->stats().shrink_lines == 1);
}

TEST_CASE("pg: a pool that keeps trying to grow back logs its shortage once", "[postgres]") {
  OwnCluster cluster;
  std::string uri = cluster.Read("uri");
  pg::Conn admin({cluster.Read("admin-uri"), 5000});
  admin.Exec("ALTER ROLE sessiond CONNECTION LIMIT 1");
  pg::PoolOptions po = PoolOpts(uri, 3, 5000);
  po.regrow_after = std::chrono::milliseconds(100);
  pg::Pool pool(po);
  for (int i = 0; i < 4; ++i) {
    // Two at once: the second tries to grow the pool back, finds no room,
    // and waits for the first.
    std::optional<pg::Pool::Lease> a(pool.Acquire());
    std::thread other([&] { pg::Pool::Lease b = pool.Acquire(); });
    for (int wait = 0; wait < 5000 && pool.stats().limit != 1; ++wait)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(pool.stats().limit == 1);
    a.reset();
    other.join();
    // Past regrow_after (a timer of the pool's, not a stand-in for waiting
    // on something): the next call tries to grow back, and finds no room.
    std::this_thread::sleep_for(po.regrow_after + std::chrono::milliseconds(20));
  }
  CHECK(pool.stats().limit == 1);
  CHECK(pool.stats().shrink_lines == 1);
}

TEST_CASE("pg: a pool whose server is away refuses at once, reported, and serves when it is back",
          "[postgres]") {
  OwnCluster cluster;
  std::string uri = cluster.Read("uri");
  pg::Pool pool(PoolOpts(uri, 2));
  pool.Check();
  REQUIRE(std::system(("'" + cluster.tool + "' stop '" + cluster.dir + "'").c_str()) == 0);
  for (int i = 0; i < 3; ++i) {
    try {
      pg::Pool::Lease l = pool.Acquire();
      l->Send("SELECT 1");
      l->Sync();
      FAIL("a query on a stopped server");
    } catch (const StoreError& e) {
      CHECK(e.busy());
      CHECK(e.reported());
    }
  }
  CHECK(pool.stats().outage);
  CHECK(pool.stats().refused == 3);
  REQUIRE(std::system(("'" + cluster.tool + "' start '" + cluster.dir + "' >/dev/null").c_str()) == 0);
  pg::Pool::Lease l = pool.Acquire();
  l->Send("SELECT 1");
  CHECK(l->Sync().back().int64(0, 0) == 1);
  CHECK_FALSE(pool.stats().outage);
}

TEST_CASE("pg: a server away at the start is busy, a wrong password is not", "[postgres]") {
  // serve starts without a database out of reach, and refuses settings that
  // waiting does not mend (main.cc).
  pg::Pool away(PoolOpts("postgresql://sessiond@127.0.0.1:1/sessions?connect_timeout=1", 1));
  try {
    away.Check();
    FAIL("connected to port 1");
  } catch (const StoreError& e) {
    CHECK(e.busy());
  }
  CHECK(away.stats().outage);
  std::string base = test::TestPgUri();
  std::string host = base.substr(base.find('@') + 1);
  host = host.substr(0, host.find('/'));
  pg::Pool wrong(PoolOpts("postgresql://sessiond:Wr0ng@" + host + "/sessions", 1));
  try {
    wrong.Check();
    FAIL("connected with a wrong password");
  } catch (const StoreError& e) {
    CHECK_FALSE(e.busy());
    CHECK_THAT(e.what(), Catch::Contains("password authentication failed"));
  }
}

}  // namespace
}  // namespace sessiond

namespace sessiond {
namespace {

TEST_CASE("pg: with several hosts, a pool's new connections go first where the last one went", "[postgres]") {
  // The first host a dead primary that never answers (a socket nobody
  // accepts on), the second the real server: the first connection waits
  // out the dead one's connect_timeout, the next ones do not try it.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  TempPgSchema schema;
  std::string base = schema.uri();  // postgresql://sessiond@HOST:PORT/sessions?...
  std::size_t at = base.find('@') + 1;
  std::string uri = base.substr(0, at) + "127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "," +
                    base.substr(at) + "&connect_timeout=1";
  auto attempts = [&] {  // connections that reached the dead host since the last look
    int n = 0;
    for (int c; (c = ::accept(fd, nullptr, nullptr)) >= 0; ++n) ::close(c);
    return n;
  };
  pg::Pool pool(PoolOpts(uri, 3));
  {
    pg::Pool::Lease l = pool.Acquire();
    CHECK(attempts() == 1);
    pg::Pool::Lease m = pool.Acquire(), n = pool.Acquire();
    CHECK(pool.stats().open == 3);
  }
  CHECK(attempts() == 0);
  ::close(fd);
}

}  // namespace
}  // namespace sessiond

namespace sessiond {
namespace {

TEST_CASE("pg: round trips with a rotation grace: a regenerate is a unit of its own, the old id costs two more",
          "[postgres]") {
  TempPgSchema schema;
  PgPolicy p(schema.uri(), {}, 10);
  using O = CommitResult::Outcome;
  auto trips = [&, last = p.backend->round_trips()]() mutable {
    auto n = p.backend->round_trips() - last;
    last = p.backend->round_trips();
    return n;
  };
  std::string id = p->Commit(std::nullopt, Set("a", "1"), 1000).id;
  auto before = p->Load(id, 1000);
  trips();
  // BEGIN and the liveness check, the totals, then the rename, the forward and COMMIT.
  ChangeSet login = Set("UserName", "ann");
  login.regenerate = true;
  CommitResult moved = p->Commit(p->Load(id, 1001), login, 1001);
  REQUIRE(moved.outcome == O::Regenerated);
  CHECK(trips() == 4);  // with the load
  // The old id: the session is not under it (one), the forward (one), the session under the new id (one).
  auto s = p->Load(id, 1002);
  REQUIRE(s);
  CHECK(s->id == moved.id);
  CHECK(trips() == 3);
  // A write loaded before the login: found gone (one), then followed and applied (three).
  CommitResult r = p->Commit(before, Set("a", "2"), 1002);
  CHECK(r.outcome == O::Updated);
  CHECK(r.id == moved.id);
  CHECK(trips() == 4);
}

TEST_CASE("pg: a store of schema version 1 migrates to the rotation grace's, its sessions intact", "[postgres]") {
  TempPgSchema schema;
  pg::Conn c({schema.uri(), 2000});
  std::string id = NewSessionId();
  OldDatabase(c, id);  // version 1 as sessiond shipped it: no forwards
  PgPolicy p(schema.uri(), {}, 10);
  auto s = p->Load(id, 1001);
  REQUIRE(s);
  CHECK(s->items == Items{{"k", "v"}});
  CHECK(QueryInt(c, "SELECT max(version) FROM sessiond_schema") == kPgSchemaVersion);
  ChangeSet login;
  login.regenerate = true;
  std::string new_id = p->Commit(s, login, 1001).id;
  CHECK(p->Load(id, 1002)->id == new_id);
}

}  // namespace
}  // namespace sessiond

namespace sessiond {
namespace {

TEST_CASE("pg: a forward's grace is on the server's clock, not the caller's", "[postgres]") {
  TempPgSchema schema;
  StoreTimeouts t;
  t.grace = 60;
  PgOptions o = Opts(schema.uri(), true);
  PolicyStore server(std::make_unique<PgBackend>(o), t, {});
  // Callers whose clocks say 1970 and 2096: the server's decides, for the
  // regenerate's forward, its lookup and its sweep alike.
  std::string old_id = server.Commit(std::nullopt, Set("k", "v"), 1).id;
  ChangeSet login;
  login.regenerate = true;
  std::string new_id = server.Commit(server.Load(old_id, 1), login, 1).id;
  auto s = server.Load(old_id, 4'000'000'000);
  REQUIRE(s);
  CHECK(s->id == new_id);
  CHECK(server.CollectGarbage(4'000'000'000, 100) == 0);
  CHECK(server.Load(old_id, 1));
  // On a caller's clock past the grace, the same forward has ended.
  PgBackend caller(Opts(schema.uri(), false));
  CHECK_FALSE(caller.Forwarded(DigestOf(old_id), 4'000'000'000));
  CHECK(caller.Forwarded(DigestOf(old_id), s->now));
}

}  // namespace
}  // namespace sessiond
