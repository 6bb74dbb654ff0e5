#include "store/sqlite_store.h"

#include <grp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "store/session_id.h"
#include "tests/temp_db.h"

using namespace sessiond;
using namespace sessiond::testing;
using Kind = Change::Kind;

namespace {


constexpr std::int64_t T0 = 1'800'000'000;

// What the code under test writes to stderr (where LogLine writes) while it lives.
class CapturedLog {
 public:
  CapturedLog() {
    std::fflush(stderr);
    char name[] = "/tmp/sessiond-store-log.XXXXXX";
    fd_ = mkstemp(name);
    REQUIRE(fd_ >= 0);
    ::unlink(name);
    saved_ = ::dup(2);
    ::dup2(fd_, 2);
  }
  ~CapturedLog() {
    Restore();
    ::close(fd_);
  }
  // Everything logged so far; stderr is itself again from here on.
  std::string text() {
    Restore();
    std::string out;
    char buf[4096];
    ssize_t n;
    ::lseek(fd_, 0, SEEK_SET);
    while ((n = ::read(fd_, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

 private:
  void Restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  int fd_ = -1, saved_ = -1;
};

// The message of the StoreError that constructing a store on `o` throws ("" if none).
std::string OpenError(const SqliteOptions& o) {
  try {
    SqliteStore store(o);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

// OpenError(o) as a user whom permission bits apply to. Root ignores them, so
// as root it runs in a child process that became `nobody`, after `dir` and
// what it holds were handed over to nobody.
std::string OpenErrorUnprivileged(const std::string& dir, const SqliteOptions& o) {
  if (::geteuid() != 0) return OpenError(o);
  constexpr uid_t kNobody = 65534;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    REQUIRE(::chown(entry.path().c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chown(dir.c_str(), kNobody, kNobody) == 0);
  int out[2];
  REQUIRE(::pipe(out) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(out[0]);
    std::string message;
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
      message = "cannot become nobody";
    else
      message = OpenError(o);
    (void)!::write(out[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(out[1]);
  std::string message;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) message.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(message != "cannot become nobody");
  return message;
}

}  // namespace

TEST_CASE("a new visitor gets a session only when something is stored", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  CHECK(store.Commit(std::nullopt, ChangeSet{}, T0).outcome == CommitResult::Outcome::Unchanged);
  ChangeSet removes;
  removes.changes.push_back({Kind::Remove, "a", {}, {}});
  removes.changes.push_back({Kind::Clear, {}, {}, {}});
  CHECK(store.Commit(std::nullopt, removes, T0).outcome == CommitResult::Outcome::Unchanged);

  CommitResult r = store.Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0);
  REQUIRE(r.outcome == CommitResult::Outcome::Created);
  CHECK(IsWellFormedId(r.id));
  auto s = store.Load(r.id, T0 + 1);
  REQUIRE(s);
  CHECK(s->items == Items{{"UserName", "ann"}});
  CHECK(s->created == T0);
}

TEST_CASE("unknown, malformed and expired ids load as nothing", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  CHECK_FALSE(store.Load(NewSessionId(), T0));
  CHECK_FALSE(store.Load("not-an-id", T0));
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  CHECK(store.Load(id, T0 + 599));
  CHECK_FALSE(store.Load(id, T0 + 600));  // idle timeout
  // Kept in use, it still ends at the absolute timeout.
  for (std::int64_t now = T0 + 300; now < T0 + 3600; now += 300) {
    auto s = store.Load(id, now);
    REQUIRE(s);
    store.Commit(s, ChangeSet{}, now);
  }
  CHECK_FALSE(store.Load(id, T0 + 3600));
}

TEST_CASE("changes of two requests merge per key", "[store]") {
  TempDb t;
  SqliteStore a(t.options()), b(t.options());  // two connections, as two workers or processes
  std::string id = a.Commit(std::nullopt, Sets({{"x", "0"}}), T0).id;
  auto seen_by_a = a.Load(id, T0);
  auto seen_by_b = b.Load(id, T0);
  a.Commit(seen_by_a, Sets({{"left", "1"}, {"x", "a"}}), T0);
  b.Commit(seen_by_b, Sets({{"right", "2"}, {"x", "b"}}), T0);
  auto s = a.Load(id, T0);
  REQUIRE(s);
  CHECK(s->items == Items{{"left", "1"}, {"right", "2"}, {"x", "b"}});  // later commit wins x
}

TEST_CASE("remove, clear and replace apply in order", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string id = store.Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}}), T0).id;
  ChangeSet cs;
  cs.changes.push_back({Kind::Remove, "a", {}, {}});
  store.Commit(store.Load(id, T0), cs, T0);
  CHECK(store.Load(id, T0)->items == Items{{"b", "2"}, {"c", "3"}});

  cs.changes = {{Kind::Replace, {}, {}, {{"r", "1"}}}, {Kind::Set, "s", "2", {}}};
  store.Commit(store.Load(id, T0), cs, T0);
  CHECK(store.Load(id, T0)->items == Items{{"r", "1"}, {"s", "2"}});

  cs.changes = {{Kind::Clear, {}, {}, {}}};
  CHECK(store.Commit(store.Load(id, T0), cs, T0).outcome == CommitResult::Outcome::Updated);
  auto s = store.Load(id, T0);
  REQUIRE(s);  // a cleared session lives on, empty
  CHECK(s->items.empty());
}

TEST_CASE("values are bytes, and text stays text", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string binary("a\0b\xff", 4);
  std::string id = store.Commit(std::nullopt, Sets({{"bin", binary}, {"txt", "héllo"}, {"empty", ""}}), T0).id;
  auto s = store.Load(id, T0);
  REQUIRE(s);
  CHECK(s->items.at("bin") == binary);
  CHECK(s->items.at("txt") == "héllo");
  CHECK(s->items.at("empty").empty());
  CHECK(t.query("SELECT group_concat(key || ':' || typeof(value), ',') FROM "
                "(SELECT * FROM items ORDER BY key)") == "bin:blob,empty:text,txt:text");
}

TEST_CASE("a read writes only when the last access is due for a refresh", "[store]") {
  TempDb t;
  SqliteStore store(t.options());  // idle 600 s: refresh after 60 s
  REQUIRE(store.touch_interval() == 60);
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  CHECK(store.Commit(store.Load(id, T0 + 59), ChangeSet{}, T0 + 59).outcome ==
        CommitResult::Outcome::Unchanged);
  CHECK(store.Load(id, T0 + 59)->accessed == T0);
  CHECK(store.Commit(store.Load(id, T0 + 60), ChangeSet{}, T0 + 60).outcome ==
        CommitResult::Outcome::Updated);
  CHECK(store.Load(id, T0 + 61)->accessed == T0 + 60);
  CHECK(store.Load(id, T0 + 659));  // the idle window now counts from T0 + 60
}

TEST_CASE("a write refreshes the last access only when it is due, like a read", "[store]") {
  TempDb t;
  SqliteStore store(t.options());  // refresh after 60 s
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  store.Commit(store.Load(id, T0 + 30), Sets({{"k", "w"}}), T0 + 30);
  auto s = store.Load(id, T0 + 31);
  REQUIRE(s);
  CHECK(s->items.at("k") == "w");
  CHECK(s->accessed == T0);
  store.Commit(store.Load(id, T0 + 90), Sets({{"k", "x"}}), T0 + 90);
  CHECK(store.Load(id, T0 + 91)->accessed == T0 + 90);
}

TEST_CASE("the store sees changes made by another connection", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  REQUIRE(store.Load(id, T0));
  t.exec("UPDATE items SET value = 'changed'");
  CHECK(store.Load(id, T0)->items.at("k") == "changed");
  t.exec("DELETE FROM sessions");
  CHECK_FALSE(store.Load(id, T0));
}

TEST_CASE("regenerate moves the session to a new id and kills the old", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string old_id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  ChangeSet cs = Sets({{"UserName", "bob"}});
  cs.regenerate = true;
  CommitResult r = store.Commit(store.Load(old_id, T0), cs, T0);
  REQUIRE(r.outcome == CommitResult::Outcome::Regenerated);
  CHECK(r.id != old_id);
  CHECK_FALSE(store.Load(old_id, T0));
  CHECK(store.Load(r.id, T0)->items == Items{{"UserName", "bob"}, {"k", "v"}});
}

TEST_CASE("abandon deletes the session and wins over other changes", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  ChangeSet cs = Sets({{"more", "1"}});
  cs.abandon = true;
  CHECK(store.Commit(store.Load(id, T0), cs, T0).outcome == CommitResult::Outcome::Abandoned);
  CHECK_FALSE(store.Load(id, T0));
  CHECK(t.query("SELECT count(*) FROM items") == "0");
}

TEST_CASE("a session that vanished meanwhile is never revived", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  auto loaded = store.Load(id, T0);
  t.exec("DELETE FROM sessions");  // abandoned by another request, say
  CommitResult r = store.Commit(loaded, Sets({{"new", "1"}}), T0);
  CHECK(r.outcome == CommitResult::Outcome::Gone);
  CHECK(r.id.empty());
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");  // nothing stored, no fresh session

  // The same when the last access was due for a refresh (the touch path).
  std::string id2 = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  auto again = store.Load(id2, T0);
  t.exec("DELETE FROM sessions");
  CHECK(store.Commit(again, Sets({{"later", "1"}}), T0 + 100).outcome == CommitResult::Outcome::Gone);
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");

  // Every kind of change is refused alike; abandon is what the client wanted anyway;
  // a read changes nothing, touch due or not.
  ChangeSet clear, regenerate, abandon;
  clear.changes.push_back({Kind::Clear, {}, {}, {}});
  regenerate.regenerate = true;
  abandon.abandon = true;
  for (std::int64_t now : {T0, T0 + 100}) {
    CHECK(store.Commit(again, clear, now).outcome == CommitResult::Outcome::Gone);
    CHECK(store.Commit(again, regenerate, now).outcome == CommitResult::Outcome::Gone);
    CHECK(store.Commit(again, abandon, now).outcome == CommitResult::Outcome::Abandoned);
    CHECK(store.Commit(again, ChangeSet{}, now).outcome == CommitResult::Outcome::Unchanged);
  }
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");
}

TEST_CASE("a write that started before a login does not replace the logged-in session", "[store]") {
  TempDb t;
  SqliteStore page(t.options()), ajax(t.options());
  std::string anonymous = page.Commit(std::nullopt, Sets({{"cart", "1"}}), T0).id;
  auto seen_by_ajax = ajax.Load(anonymous, T0);  // an AJAX call starts...
  ChangeSet login = Sets({{"UserName", "ann"}});
  login.regenerate = true;
  CommitResult logged_in = page.Commit(page.Load(anonymous, T0), login, T0);  // ...a login commits...
  REQUIRE(logged_in.outcome == CommitResult::Outcome::Regenerated);
  // ...and the AJAX call's write, under the old id, comes last.
  for (std::int64_t now : {T0 + 1, T0 + 100}) {  // the touch not due, and due
    CommitResult late = ajax.Commit(seen_by_ajax, Sets({{"cart", "2"}}), now);
    CHECK(late.outcome == CommitResult::Outcome::Gone);
    CHECK(late.id.empty());  // no cookie to send, so the login's cookie stays
  }
  CHECK(t.query("SELECT count(*) FROM sessions") == "1");
  auto s = page.Load(logged_in.id, T0 + 100);
  REQUIRE(s);
  CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "1"}});
}

TEST_CASE("a write that started before a logout stores nothing", "[store]") {
  TempDb t;
  SqliteStore page(t.options()), ajax(t.options());
  std::string id = page.Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
  auto seen_by_ajax = ajax.Load(id, T0);
  ChangeSet logout;
  logout.abandon = true;
  REQUIRE(page.Commit(page.Load(id, T0), logout, T0).outcome == CommitResult::Outcome::Abandoned);
  for (std::int64_t now : {T0 + 1, T0 + 100}) {
    CHECK(ajax.Commit(seen_by_ajax, Sets({{"cart", "2"}}), now).outcome == CommitResult::Outcome::Gone);
    CHECK(ajax.Commit(seen_by_ajax, logout, now).outcome == CommitResult::Outcome::Abandoned);
  }
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");
  CHECK(t.query("SELECT count(*) FROM items") == "0");
}

TEST_CASE("limits refuse the whole change set", "[store]") {
  TempDb t;
  SqliteOptions o = t.options();
  o.limits.max_key_bytes = 8;
  o.limits.max_value_bytes = 16;
  o.limits.max_items = 3;
  o.limits.max_session_bytes = 30;
  SqliteStore store(o);
  std::string id = store.Commit(std::nullopt, Sets({{"a", "1"}}), T0).id;
  auto loaded = store.Load(id, T0);
  CHECK_THROWS_AS(store.Commit(loaded, Sets({{"b", "2"}, {"toolongkey", "x"}}), T0), LimitError);
  CHECK_THROWS_AS(store.Commit(loaded, Sets({{"b", std::string(17, 'x')}}), T0), LimitError);
  CHECK_THROWS_AS(store.Commit(loaded, Sets({{"b", "2"}, {"c", "3"}, {"d", "4"}}), T0), LimitError);
  CHECK_THROWS_AS(store.Commit(loaded, Sets({{"b", std::string(16, 'x')}, {"c", std::string(16, 'x')}}), T0),
                  LimitError);
  CHECK_THROWS_AS(store.Commit(std::nullopt, Sets({{"", "empty key"}}), T0), LimitError);
  CHECK(store.Load(id, T0)->items == Items{{"a", "1"}});  // nothing half-written
  CHECK_THROWS_AS(store.Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}), T0),
                  LimitError);
}

TEST_CASE("garbage collection deletes expired sessions in batches", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  for (int i = 0; i < 5; ++i) store.Commit(std::nullopt, Sets({{"k", "v"}}), T0);
  std::string live = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0 + 500).id;
  CHECK(store.CollectGarbage(T0 + 100, 2) == 0);
  CHECK(store.CollectGarbage(T0 + 600, 2) == 2);
  CHECK(store.CollectGarbage(T0 + 600, 2) == 2);
  CHECK(store.CollectGarbage(T0 + 600, 2) == 1);
  CHECK(store.CollectGarbage(T0 + 600, 2) == 0);
  CHECK(store.Load(live, T0 + 600));
  CHECK(t.query("SELECT count(*) FROM items") == "1");  // the expired sessions' items went too
}

TEST_CASE("the file is private, in WAL mode, at the current schema version", "[store]") {
  TempDb t;
  { SqliteStore store(t.options()); }
  struct stat st;
  REQUIRE(stat(t.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(t.query("PRAGMA journal_mode") == "wal");
  CHECK(t.query("PRAGMA user_version") == std::to_string(kSchemaVersion));
}

TEST_CASE("a file of a newer schema version is refused", "[store]") {
  TempDb t;
  { SqliteStore store(t.options()); }
  t.exec("PRAGMA user_version = 99");
  CHECK_THROWS_WITH(SqliteStore(t.options()), Catch::Contains("newer than this sessiond supports"));
}

TEST_CASE("a writer waits for another, then reports busy", "[store]") {
  TempDb t;
  SqliteOptions o = t.options();
  o.busy_timeout_ms = 50;
  SqliteStore store(o);
  sqlite3* other = nullptr;
  sqlite3_open(t.path.c_str(), &other);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  try {
    store.Commit(std::nullopt, Sets({{"k", "v"}}), T0);
    FAIL("commit succeeded while another connection held the write lock");
  } catch (const StoreError& e) {
    CHECK(e.busy());
  }
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  CHECK(store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).outcome == CommitResult::Outcome::Created);
}

TEST_CASE("a read whose last-access refresh cannot be written is still served", "[store]") {
  TempDb t;
  SqliteOptions o = t.options();
  o.busy_timeout_ms = 50;
  SqliteStore store(o);  // refresh after 60 s
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  auto loaded = store.Load(id, T0 + 60);
  REQUIRE(loaded);
  sqlite3* other = nullptr;
  sqlite3_open(t.path.c_str(), &other);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  CapturedLog log;
  CommitResult r;
  CHECK_NOTHROW(r = store.Commit(loaded, ChangeSet{}, T0 + 60));
  CHECK(r.outcome == CommitResult::Outcome::Unchanged);
  std::string logged = log.text();
  CHECK_THAT(logged, Catch::StartsWith("sessiond: store: last access not refreshed: "));
  CHECK_THAT(logged, Catch::Contains("locked"));
  CHECK(std::count(logged.begin(), logged.end(), '\n') == 1);
  CHECK_THAT(logged, !Catch::Contains(id));  // neither the id nor its digest
  CHECK_THAT(logged, !Catch::Contains(id.substr(0, 8)));
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  CHECK(store.Load(id, T0 + 61)->accessed == T0);  // refreshed at the next read instead
  CHECK(store.Commit(store.Load(id, T0 + 61), ChangeSet{}, T0 + 61).outcome == CommitResult::Outcome::Updated);
}

TEST_CASE("a deleted database file serves reads and refuses every write", "[store]") {
  TempDb t;
  SqliteStore store(t.options());
  std::string id = store.Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  std::string copy = t.dir + "/copy.db";
  t.exec("VACUUM INTO '" + copy + "'");
  REQUIRE(::unlink(t.path.c_str()) == 0);

  auto loaded = store.Load(id, T0);
  REQUIRE(loaded);  // what the open file holds is still right
  try {
    store.Commit(loaded, Sets({{"k", "w"}}), T0);
    FAIL("a write to a deleted file was acknowledged");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) == "database file " + t.path + " was deleted or replaced");
    CHECK_FALSE(e.busy());
  }
  CHECK_THROWS_WITH(store.Commit(std::nullopt, Sets({{"k", "v"}}), T0), Catch::Contains("was deleted"));
  ChangeSet abandon;
  abandon.abandon = true;
  CHECK_THROWS_AS(store.Commit(loaded, abandon, T0), StoreError);
  CHECK_THROWS_AS(store.CollectGarbage(T0 + 10'000, 10), StoreError);
  {
    CapturedLog log;  // a read due for a refresh is served; the refresh is not written
    CHECK(store.Commit(store.Load(id, T0 + 60), ChangeSet{}, T0 + 60).outcome ==
          CommitResult::Outcome::Unchanged);
    CHECK_THAT(log.text(), Catch::Contains("last access not refreshed: database file"));
  }
  CHECK(store.Load(id, T0 + 60)->items == Items{{"k", "v"}});

  // The file comes back (a backup moved into place): the store follows it.
  REQUIRE(::rename(copy.c_str(), t.path.c_str()) == 0);
  CapturedLog log;
  CHECK(store.Commit(store.Load(id, T0 + 60), Sets({{"k", "back"}}), T0 + 60).outcome ==
        CommitResult::Outcome::Updated);
  CHECK_THAT(log.text(), Catch::Contains("was replaced"));
  CHECK(t.query("SELECT value FROM items") == "back");
}

TEST_CASE("a database file replaced under the store is reopened, and writes land in it", "[store]") {
  TempDb t;
  SqliteStore store(t.options()), other_worker(t.options());
  std::string kept = store.Commit(std::nullopt, Sets({{"k", "kept"}}), T0).id;
  std::string copy = t.dir + "/copy.db";
  t.exec("VACUUM INTO '" + copy + "'");  // a backup, before...
  std::string lost = store.Commit(std::nullopt, Sets({{"k", "lost"}}), T0).id;  // ...this write
  REQUIRE(other_worker.Load(lost, T0));
  // The backup moved into place, while the old file's -wal (holding `lost`) stays beside it.
  REQUIRE(::rename(copy.c_str(), t.path.c_str()) == 0);

  CapturedLog log;
  CHECK(store.Load(kept, T0));
  CHECK_FALSE(store.Load(lost, T0));  // the copy's content, not the old file's
  std::string fresh = store.Commit(std::nullopt, Sets({{"k", "fresh"}}), T0).id;
  CHECK_FALSE(other_worker.Load(lost, T0));  // every connection follows the file
  CHECK(other_worker.Commit(other_worker.Load(kept, T0), Sets({{"more", "1"}}), T0).outcome ==
        CommitResult::Outcome::Updated);
  std::string logged = log.text();
  CHECK_THAT(logged, Catch::Contains("database file " + t.path + " was replaced; reopened it"));
  CHECK(std::count(logged.begin(), logged.end(), '\n') == 2);  // one line per connection

  // Through a connection of its own: the writes are in the file now at the path.
  CHECK(t.query("SELECT group_concat(value, ',') FROM (SELECT value FROM items ORDER BY value)") ==
        "1,fresh,kept");
  CHECK(t.query("PRAGMA journal_mode") == "wal");
  CHECK(store.Load(fresh, T0));
}

TEST_CASE("a read-only database file is refused at start", "[store]") {
  TempDb t;
  { SqliteStore store(t.options()); }
  REQUIRE(::chmod(t.path.c_str(), 0400) == 0);
  CHECK(OpenErrorUnprivileged(t.dir, t.options()) == "database file " + t.path + " is read-only");
}

TEST_CASE("a database in a directory that is not writable is refused at start", "[store]") {
  TempDb t;
  { SqliteStore store(t.options()); }
  REQUIRE(::chmod(t.dir.c_str(), 0500) == 0);
  CHECK(OpenErrorUnprivileged(t.dir, t.options()) ==
        "directory " + t.dir + " is not writable: SQLite keeps " + t.path + "-wal and " + t.path +
            "-shm beside the database");
}
