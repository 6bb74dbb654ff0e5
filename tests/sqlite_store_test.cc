#include "store/open.h"
#include "store/sqlite/sqlite_backend.h"

#include <grp.h>
#include <sqlite3.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

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
std::string OpenError(const StoreOptions& o) {
  try {
    auto store = OpenStore(o);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

// What `body` returns, run in a child process of its own (it may change
// its user or mount namespace without touching the test's process).
std::string InChild(const std::function<std::string()>& body) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(out[0]);
    std::string result = body();
    (void)!::write(out[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(out[1]);
  std::string result;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) result.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return result;
}

// OpenError(o) as a user whom permission bits apply to. Root ignores them, so
// as root it runs in a child process that became `nobody`, after `dir` and
// what it holds were handed over to nobody.
std::string OpenErrorUnprivileged(const std::string& dir, const StoreOptions& o) {
  if (::geteuid() != 0) return OpenError(o);
  constexpr uid_t kNobody = 65534;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    REQUIRE(::chown(entry.path().c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chown(dir.c_str(), kNobody, kNobody) == 0);
  std::string message = InChild([&]() -> std::string {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
      return "cannot become nobody";
    return OpenError(o);
  });
  REQUIRE(message != "cannot become nobody");
  return message;
}

}  // namespace

TEST_CASE("text is stored as text, other bytes as blobs", "[store][sqlite]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string binary("a\0b\xff", 4);
  std::string id = store->Commit(std::nullopt, Sets({{"bin", binary}, {"txt", "héllo"}, {"empty", ""}}), T0).id;
  auto s = store->Load(id, T0);
  REQUIRE(s);
  CHECK(s->items.at("bin") == binary);
  CHECK(s->items.at("txt") == "héllo");
  CHECK(s->items.at("empty").empty());
  CHECK(t.query("SELECT group_concat(key || ':' || typeof(value), ',') FROM "
                "(SELECT * FROM items ORDER BY key)") == "bin:blob,empty:text,txt:text");
}

TEST_CASE("the file is private, in WAL mode, at the current schema version", "[store][sqlite]") {
  TempDb t;
  { auto store = OpenStore(t.options()); }
  struct stat st;
  REQUIRE(stat(t.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(t.query("PRAGMA journal_mode") == "wal");
  CHECK(t.query("PRAGMA user_version") == std::to_string(kSchemaVersion));
}

TEST_CASE("a file that cannot be put in WAL mode is refused at start", "[store][sqlite]") {
  TempDb t;
  // SQLite's unix-dotfile VFS locks with dot files and has no shared memory,
  // as a network file system: SQLite answers the WAL pragma with the mode it
  // stays in. Made the default for this process while the store opens.
  sqlite3_vfs* dotfile = sqlite3_vfs_find("unix-dotfile");
  sqlite3_vfs* usual = sqlite3_vfs_find(nullptr);
  REQUIRE(dotfile);
  REQUIRE(sqlite3_vfs_register(dotfile, 1) == SQLITE_OK);
  std::string error = OpenError(t.options());
  REQUIRE(sqlite3_vfs_register(usual, 1) == SQLITE_OK);
  CHECK(error == "database file " + t.path +
                     " cannot be put in WAL mode (SQLite left it in journal mode \"delete\"); WAL needs shared "
                     "memory beside the file (the -shm), which network file systems do not give: put the "
                     "database on a local file system");
}

TEST_CASE("a WAL that a burst grew is cut back to the size limit when it is reused", "[store][sqlite]") {
  TempDb t;
  StoreOptions o = t.options();
  o.synchronous = "OFF";  // the test is about sizes, not durability
  SqliteBackend backend(o);
  const std::string wal = t.path + "-wal";
  // One transaction of 24 MiB: the WAL holds all of it until a checkpoint,
  // which this commit runs (nobody else reads) before the WAL is reused.
  IdDigest d = DigestOf(NewSessionId());
  backend.Write([&](StoreWriter& w) {
    w.Insert(d, T0);
    for (int i = 0; i < 48; ++i) w.SetItem(d, "k" + std::to_string(i), std::string(512 * 1024, 'x'), ItemType::String);
  });
  REQUIRE(std::filesystem::file_size(wal) > static_cast<std::uintmax_t>(kWalSizeLimit));
  // The next commit starts the WAL over from its beginning, and cuts it.
  backend.Write([&](StoreWriter& w) { w.Insert(DigestOf(NewSessionId()), T0); });
  CHECK(std::filesystem::file_size(wal) <= static_cast<std::uintmax_t>(kWalSizeLimit));
}

TEST_CASE("a database file that cannot be read is a store error, not a crash", "[store][sqlite]") {
  TempDb t;
  std::string id;
  {
    auto store = OpenStore(t.options());
    id = store->Commit(std::nullopt, Sets({{"a", std::string(60000, 'v')}, {"b", std::string(60000, 'w')}}), T0).id;
  }  // the last connection checkpoints the WAL into the file and removes it
  auto store = OpenStore(t.options());
  // A commit in the WAL: SQLite now takes the file's size from the WAL, not
  // from the file, and reads the session's pages from the file.
  store->Commit(std::nullopt, Sets({{"k", "v"}}), T0);
  REQUIRE(store->Load(id, T0));
  // The file loses its pages under the open store, as a disk that fails to
  // read them would. Read through a memory map, such a page is SIGBUS: the
  // whole server dies. Read with read(), it is an error for that request.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::truncate(t.path.c_str(), 0) != 0) ::_exit(3);
    try {
      store->Load(id, T0);
    } catch (const StoreError&) {
      ::_exit(0);
    }
    ::_exit(0);  // served from what it still had: no crash either
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a file a newer sessiond expanded is served as it is, one it finished is refused", "[store][sqlite]") {
  TempDb t;
  { auto store = OpenStore(t.options()); }
  t.exec("PRAGMA user_version = 99");
  { auto store = OpenStore(t.options()); }
  CHECK(t.query("PRAGMA user_version") == "99");  // left as it is
  t.exec("UPDATE sessiond_schema SET required = 99");
  CHECK_THROWS_WITH(OpenStore(t.options()), Catch::Contains("needs a sessiond of schema version 99"));
}

TEST_CASE("a writer waits for another, then reports busy", "[store][sqlite]") {
  TempDb t;
  StoreOptions o = t.options();
  o.busy_timeout_ms = 50;
  auto store = OpenStore(o);
  sqlite3* other = nullptr;
  sqlite3_open(t.path.c_str(), &other);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  try {
    store->Commit(std::nullopt, Sets({{"k", "v"}}), T0);
    FAIL("commit succeeded while another connection held the write lock");
  } catch (const StoreError& e) {
    CHECK(e.busy());
  }
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  CHECK(store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).outcome == CommitResult::Outcome::Created);
}

TEST_CASE("a read whose last-access refresh cannot be written is still served", "[store][sqlite]") {
  TempDb t;
  StoreOptions o = t.options();
  o.busy_timeout_ms = 50;
  auto store = OpenStore(o);  // refresh after 60 s
  std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  auto loaded = store->Load(id, T0 + 60);
  REQUIRE(loaded);
  sqlite3* other = nullptr;
  sqlite3_open(t.path.c_str(), &other);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  CapturedLog log;
  CommitResult r;
  CHECK_NOTHROW(r = store->Commit(loaded, ChangeSet{}, T0 + 60));
  CHECK(r.outcome == CommitResult::Outcome::Unchanged);
  std::string logged = log.text();
  CHECK_THAT(logged, Catch::StartsWith("sessiond: store: last access not refreshed: "));
  CHECK_THAT(logged, Catch::Contains("locked"));
  CHECK(std::count(logged.begin(), logged.end(), '\n') == 1);
  CHECK_THAT(logged, !Catch::Contains(id));  // neither the id nor its digest
  CHECK_THAT(logged, !Catch::Contains(id.substr(0, 8)));
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  CHECK(store->Load(id, T0 + 61)->accessed == T0);  // refreshed at the next read instead
  CHECK(store->Commit(store->Load(id, T0 + 61), ChangeSet{}, T0 + 61).outcome == CommitResult::Outcome::Updated);
}

TEST_CASE("a deleted database file serves reads and refuses every write", "[store][sqlite]") {
  TempDb t;
  auto store = OpenStore(t.options());
  std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  std::string copy = t.dir + "/copy.db";
  t.exec("VACUUM INTO '" + copy + "'");
  REQUIRE(::unlink(t.path.c_str()) == 0);

  auto loaded = store->Load(id, T0);
  REQUIRE(loaded);  // what the open file holds is still right
  try {
    store->Commit(loaded, Sets({{"k", "w"}}), T0);
    FAIL("a write to a deleted file was acknowledged");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) == "database file " + t.path + " was deleted or replaced");
    CHECK_FALSE(e.busy());
  }
  CHECK_THROWS_WITH(store->Commit(std::nullopt, Sets({{"k", "v"}}), T0), Catch::Contains("was deleted"));
  ChangeSet abandon;
  abandon.abandon = true;
  CHECK_THROWS_AS(store->Commit(loaded, abandon, T0), StoreError);
  CHECK_THROWS_AS(store->CollectGarbage(T0 + 10'000, 10), StoreError);
  {
    CapturedLog log;  // a read due for a refresh is served; the refresh is not written
    CHECK(store->Commit(store->Load(id, T0 + 60), ChangeSet{}, T0 + 60).outcome ==
          CommitResult::Outcome::Unchanged);
    CHECK_THAT(log.text(), Catch::Contains("last access not refreshed: database file"));
  }
  CHECK(store->Load(id, T0 + 60)->items == Items{{"k", "v"}});

  // The file comes back (a backup moved into place): the store follows it.
  REQUIRE(::rename(copy.c_str(), t.path.c_str()) == 0);
  CapturedLog log;
  CHECK(store->Commit(store->Load(id, T0 + 60), Sets({{"k", "back"}}), T0 + 60).outcome ==
        CommitResult::Outcome::Updated);
  CHECK_THAT(log.text(), Catch::Contains("was replaced"));
  CHECK(t.query("SELECT value FROM items") == "back");
}

TEST_CASE("a database file replaced under the store is reopened, and writes land in it", "[store][sqlite]") {
  TempDb t;
  auto store = OpenStore(t.options()), other_worker = OpenStore(t.options());
  std::string kept = store->Commit(std::nullopt, Sets({{"k", "kept"}}), T0).id;
  std::string copy = t.dir + "/copy.db";
  t.exec("VACUUM INTO '" + copy + "'");  // a backup, before...
  std::string lost = store->Commit(std::nullopt, Sets({{"k", "lost"}}), T0).id;  // ...this write
  REQUIRE(other_worker->Load(lost, T0));
  // The backup moved into place, while the old file's -wal (holding `lost`) stays beside it.
  REQUIRE(::rename(copy.c_str(), t.path.c_str()) == 0);

  CapturedLog log;
  CHECK(store->Load(kept, T0));
  CHECK_FALSE(store->Load(lost, T0));  // the copy's content, not the old file's
  std::string fresh = store->Commit(std::nullopt, Sets({{"k", "fresh"}}), T0).id;
  CHECK_FALSE(other_worker->Load(lost, T0));  // every connection follows the file
  CHECK(other_worker->Commit(other_worker->Load(kept, T0), Sets({{"more", "1"}}), T0).outcome ==
        CommitResult::Outcome::Updated);
  std::string logged = log.text();
  CHECK_THAT(logged, Catch::Contains("database file " + t.path + " was replaced; reopened it"));
  CHECK(std::count(logged.begin(), logged.end(), '\n') == 2);  // one line per connection

  // Through a connection of its own: the writes are in the file now at the path.
  CHECK(t.query("SELECT group_concat(value, ',') FROM (SELECT value FROM items ORDER BY value)") ==
        "1,fresh,kept");
  CHECK(t.query("PRAGMA journal_mode") == "wal");
  CHECK(store->Load(fresh, T0));
}

TEST_CASE("a read-only database file is refused at start", "[store][sqlite]") {
  TempDb t;
  { auto store = OpenStore(t.options()); }
  REQUIRE(::chmod(t.path.c_str(), 0400) == 0);
  CHECK(OpenErrorUnprivileged(t.dir, t.options()) == "database file " + t.path + " is read-only");
}

TEST_CASE("a database in a directory that is not writable is refused at start", "[store][sqlite]") {
  TempDb t;
  { auto store = OpenStore(t.options()); }
  REQUIRE(::chmod(t.dir.c_str(), 0500) == 0);
  CHECK(OpenErrorUnprivileged(t.dir, t.options()) ==
        "directory " + t.dir + " is not writable: SQLite keeps " + t.path + "-wal and " + t.path +
            "-shm beside the database");
}

namespace {

// Runs body(0) ... body(n - 1) on n threads at once, their writes in one
// batch: the leader waits until all n are queued. Returns how many
// transactions the leaders ran meanwhile.
template <class Body>
std::uint64_t InOneBatch(const std::string& path, int n, Body body) {
  std::uint64_t before = SqliteBackend::BatchesForTesting(path);
  SqliteBackend::GatherNextBatchForTesting(path, static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(body, i);
  for (auto& t : threads) t.join();
  return SqliteBackend::BatchesForTesting(path) - before;
}

}  // namespace

TEST_CASE("concurrent writes share one transaction, and a failing one is undone alone", "[store][sqlite]") {
  TempDb t;
  StoreOptions o = t.options();
  o.limits.max_items = 3;
  auto setup = OpenStore(o);
  std::string full = setup->Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}}), T0).id;
  std::string gone = setup->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  std::string regen = setup->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  std::string plain1 = setup->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  std::string plain2 = setup->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
  auto full_loaded = setup->Load(full, T0), gone_loaded = setup->Load(gone, T0),
       regen_loaded = setup->Load(regen, T0), plain1_loaded = setup->Load(plain1, T0),
       plain2_loaded = setup->Load(plain2, T0);
  ChangeSet abandon;
  abandon.abandon = true;
  REQUIRE(setup->Commit(setup->Load(gone, T0), abandon, T0).outcome == CommitResult::Outcome::Abandoned);
  ChangeSet regenerate = Sets({{"UserName", "ann"}});
  regenerate.regenerate = true;

  constexpr int kWriters = 6;
  std::vector<std::unique_ptr<SessionStore>> stores;
  for (int i = 0; i < kWriters; ++i) stores.push_back(OpenStore(o));  // one per worker thread
  std::vector<CommitResult> results(kWriters);
  std::vector<std::string> errors(kWriters);
  auto batches = InOneBatch(t.path, kWriters, [&](int i) {
    SessionStore& s = *stores[static_cast<std::size_t>(i)];
    auto u = static_cast<std::size_t>(i);
    try {
      switch (i) {
        case 0: results[u] = s.Commit(full_loaded, Sets({{"d", "4"}}), T0); break;  // past max_items
        case 1: results[u] = s.Commit(gone_loaded, Sets({{"k", "w"}}), T0); break;
        case 2: results[u] = s.Commit(regen_loaded, regenerate, T0); break;
        case 3: results[u] = s.Commit(std::nullopt, Sets({{"new", "1"}}), T0); break;
        case 4: results[u] = s.Commit(plain1_loaded, Sets({{"k", "one"}}), T0); break;
        case 5: results[u] = s.Commit(plain2_loaded, Sets({{"k", "two"}}), T0); break;
      }
    } catch (const LimitError& e) {
      errors[u] = std::string("limit: ") + e.what();
    } catch (const std::exception& e) {
      errors[u] = e.what();
    }
  });
  CHECK(batches == 1);
  CHECK(errors[0] == "limit: session of 4 items exceeds max_items");
  for (int i = 1; i < kWriters; ++i) CHECK(errors[static_cast<std::size_t>(i)] == "");
  CHECK(results[1].outcome == CommitResult::Outcome::Gone);
  CHECK(results[2].outcome == CommitResult::Outcome::Regenerated);
  CHECK(results[3].outcome == CommitResult::Outcome::Created);
  CHECK(results[4].outcome == CommitResult::Outcome::Updated);
  CHECK(results[5].outcome == CommitResult::Outcome::Updated);
  CHECK(results[2].id != results[3].id);

  CHECK(setup->Load(full, T0)->items == Items{{"a", "1"}, {"b", "2"}, {"c", "3"}});  // "d" undone
  CHECK_FALSE(setup->Load(gone, T0));
  CHECK(setup->Load(regen, T0)->id == results[2].id);  // the old id, within its rotation grace
  CHECK(setup->Load(results[2].id, T0)->items == Items{{"UserName", "ann"}, {"k", "v"}});
  CHECK(setup->Load(results[3].id, T0)->items == Items{{"new", "1"}});
  CHECK(setup->Load(plain1, T0)->items == Items{{"k", "one"}});
  CHECK(setup->Load(plain2, T0)->items == Items{{"k", "two"}});
  CHECK(t.query("SELECT count(*) FROM sessions") == "5");
}

TEST_CASE("a batch whose COMMIT fails fails every write in it", "[store][sqlite]") {
  TempDb t;
  constexpr int kWriters = 4;
  std::vector<std::unique_ptr<SessionStore>> stores;
  std::vector<std::optional<Session>> loaded;
  for (int i = 0; i < kWriters; ++i) {
    stores.push_back(OpenStore(t.options()));
    loaded.push_back(stores.back()->Load(stores.back()->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id, T0));
  }
  REQUIRE(::unlink(t.path.c_str()) == 0);
  std::vector<std::string> errors(kWriters);
  auto batches = InOneBatch(t.path, kWriters, [&](int i) {
    auto u = static_cast<std::size_t>(i);
    try {
      // A new session, a change and a read due for a refresh fail alike.
      if (i == 0) stores[u]->Commit(std::nullopt, Sets({{"k", "v"}}), T0);
      else stores[u]->Commit(loaded[u], Sets({{"k", "w"}}), T0);
      errors[u] = "acknowledged";
    } catch (const StoreError& e) {
      errors[u] = e.what();
    }
  });
  CHECK(batches == 1);
  for (const std::string& e : errors) CHECK(e == "database file " + t.path + " was deleted or replaced");
}

TEST_CASE("a batch that cannot begin fails every write in it as busy", "[store][sqlite]") {
  TempDb t;
  StoreOptions o = t.options();
  o.busy_timeout_ms = 50;
  constexpr int kWriters = 3;
  std::vector<std::unique_ptr<SessionStore>> stores;
  for (int i = 0; i < kWriters; ++i) stores.push_back(OpenStore(o));
  sqlite3* other = nullptr;
  sqlite3_open(t.path.c_str(), &other);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  std::vector<int> busy(kWriters, 0);
  auto batches = InOneBatch(t.path, kWriters, [&](int i) {
    auto u = static_cast<std::size_t>(i);
    try {
      stores[u]->Commit(std::nullopt, Sets({{"k", "v"}}), T0);
    } catch (const StoreError& e) {
      busy[u] = e.busy() ? 1 : 2;
    }
  });
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  CHECK(batches == 1);
  CHECK(busy == std::vector<int>(kWriters, 1));
  CHECK(t.query("SELECT count(*) FROM sessions") == "0");
}

TEST_CASE("the sweep gives the write lock to a waiting writer between its batches", "[store][sqlite]") {
  TempDb t;
  StoreOptions o = t.options();
  o.synchronous = "OFF";
  InsertSessions(o, 50, T0);  // expired at T0 + 600 (the idle timeout)
  SqliteBackend sweeper(o), writer(o);
  std::vector<std::thread> requests;  // joined after the sweep: one may wait for its lock
  int batch_no = 0, let_in = 0;
  // In each odd batch (the write lock held) a request commits, and waits
  // for the lock as its writers' leader; in the next batch: was it let in
  // between the two? (A sweep that takes the lock straight back usually
  // wins it: a mutex is no queue.)
  SqliteBackend::DuringGcBatchForTesting(t.path, [&] {
    ++batch_no;
    const std::int64_t created = T0 + 700 + batch_no;
    if (batch_no % 2 == 1) {
      std::uint64_t before = SqliteBackend::BatchesForTesting(t.path);
      requests.emplace_back([&writer, created] {
        writer.Write([&](StoreWriter& w) { w.Insert(DigestOf(NewSessionId()), created); });
      });
      // The request's thread has become the leader and taken its batch: it
      // now waits for the write lock the sweep holds.
      // (Not when the one before is still waiting: then this one queues.)
      for (int i = 0; i < 2000 && SqliteBackend::BatchesForTesting(t.path) == before; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      if (t.query("SELECT count(*) FROM sessions WHERE created = " + std::to_string(created - 1)) == "1") ++let_in;
    }
  });
  std::size_t total = 0, n;
  do {
    n = sweeper.CollectGarbage(T0 + 600, 5);  // as the collector does, one batch after another
    total += n;
  } while (n == 5);
  for (auto& r : requests) r.join();
  SqliteBackend::DuringGcBatchForTesting(t.path, {});
  CHECK(total == 50);
  CHECK(batch_no == 11);
  CHECK(let_in == 5);  // every time
}

TEST_CASE("two spellings of one file share one queue of writers", "[store][sqlite]") {
  TempDb t;
  StoreOptions plain = t.options(), dotted = t.options(), linked = t.options();
  dotted.db = t.dir + "/./sessions.db";
  linked.db = t.dir + "/link.db";
  SqliteBackend first(plain);
  REQUIRE(::symlink(t.path.c_str(), linked.db.c_str()) == 0);
  SqliteBackend second(dotted), third(linked);
  std::uint64_t before = SqliteBackend::BatchesForTesting(t.path);
  for (SqliteBackend* b : {&first, &second, &third})
    b->Write([&](StoreWriter& w) { w.Insert(DigestOf(NewSessionId()), T0); });
  // Each write was a transaction of the one queue, whichever name it came by.
  CHECK(SqliteBackend::BatchesForTesting(t.path) == before + 3);
  CHECK(SqliteBackend::BatchesForTesting(linked.db) == before + 3);
}

TEST_CASE("a full disk is a store error to try again later (503), not a failure (500)", "[store][sqlite]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot mount a small file system to fill; not checked");
    return;
  }
  TempDb t;
  // A 1 MiB tmpfs over the test's directory, in a mount namespace of the
  // child's own (gone with it), filled by sessions until a commit fails.
  std::string result = InChild([&]() -> std::string {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", t.dir.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0)
      return "mount";
    try {
      auto store = OpenStore(t.options());
      for (int i = 0; i < 1000; ++i) {
        try {
          store->Commit(std::nullopt, Sets({{"k", std::string(16 * 1024, 'x')}}), T0);
        } catch (const StoreError& e) {
          return std::string(e.busy() ? "busy: " : "not busy: ") + e.what();
        }
      }
      return "never full";
    } catch (const StoreError& e) {
      return std::string("open: ") + e.what();
    }
  });
  if (result == "mount") {
    WARN("cannot mount a tmpfs here (no CAP_SYS_ADMIN in this namespace); not checked");
    return;
  }
  INFO(result);
  CHECK(result.rfind("busy: ", 0) == 0);
  CHECK(result.find("full") != std::string::npos);
}
