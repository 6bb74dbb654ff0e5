#include "store/sqlite/sqlite_backend.h"

#include "store/open.h"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <vector>

#include "log/log.h"
#include "store/liveness.h"
#include "store/session_id.h"
#include "store/sqlite/sqlite_db.h"

namespace sessiond {
namespace {

// Each entry migrates from version i to i+1. Never edit a shipped entry: add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE sessions (
  id_hash  BLOB PRIMARY KEY,   -- SHA3-256 of the id: sha3('<id>', 256) in the sqlite3 shell
  created  INTEGER NOT NULL,   -- unix seconds
  accessed INTEGER NOT NULL,   -- last access, refreshed lazily
  expires  INTEGER NOT NULL    -- min(accessed + idle timeout, created + absolute timeout)
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions(expires);
CREATE TABLE items (
  id_hash BLOB NOT NULL REFERENCES sessions(id_hash) ON DELETE CASCADE ON UPDATE CASCADE,
  key     TEXT NOT NULL,
  value   BLOB NOT NULL,       -- stored as TEXT when it is UTF-8 without NUL
  PRIMARY KEY (id_hash, key)
) WITHOUT ROWID;
)sql",
    // 1 -> 2: a session's items follow it when it is deleted or renamed
    // whatever PRAGMA foreign_keys says, so a DELETE typed in the sqlite3
    // shell (where the pragma is off) leaves no items behind. With the pragma
    // on, the foreign key's cascade acts first and the triggers find nothing.
    // Items such deletes left behind before are removed.
    R"sql(
CREATE TRIGGER sessions_delete_items AFTER DELETE ON sessions
BEGIN
  DELETE FROM items WHERE id_hash = old.id_hash;
END;
CREATE TRIGGER sessions_rename_items AFTER UPDATE OF id_hash ON sessions
BEGIN
  UPDATE items SET id_hash = new.id_hash WHERE id_hash = old.id_hash;
END;
DELETE FROM items WHERE id_hash NOT IN (SELECT id_hash FROM sessions);
)sql",
    // 2 -> 3: rolling upgrades (backend.h, SchemaLevel and Member): the
    // lowest schema version a sessiond must know to use the file, and the
    // sessionds serving it.
    R"sql(
CREATE TABLE sessiond_schema (required INTEGER NOT NULL);
INSERT INTO sessiond_schema (required) VALUES (0);
CREATE TABLE sessiond_members (
  member  TEXT PRIMARY KEY,    -- host:pid:tag of a sessiond serve
  release TEXT NOT NULL,       -- its version
  schema  INTEGER NOT NULL,    -- the schema version it knows
  started INTEGER NOT NULL,    -- unix seconds
  seen    INTEGER NOT NULL     -- its last heartbeat
) WITHOUT ROWID;
)sql",
    // 3 -> 4: the rotation grace. A regenerated session's old id leads to it
    // for a few seconds (--regenerate-grace). No foreign key on new_hash: the
    // session may be renamed again or deleted, and the forward then leads to
    // another forward or nowhere (PolicyStore::Follow checks).
    R"sql(
CREATE TABLE forwards (
  old_hash BLOB PRIMARY KEY,   -- SHA3-256 of the old id
  new_hash BLOB NOT NULL,      -- the session's id_hash since the regenerate
  expires  INTEGER NOT NULL,   -- unix seconds: the end of the grace, and the old id's
  sealed   BLOB NOT NULL       -- the new id, which only the old id opens (session_id.h SealId)
) WITHOUT ROWID;
CREATE INDEX forwards_by_expiry ON forwards(expires);
)sql",
    // 4 -> 5: exclusive mode's session locks (SESSION_MODE exclusive). No
    // foreign key: a session renamed or deleted under its lock leaves the
    // row to its holder's release, or to the lease's end and the collector.
    R"sql(
CREATE TABLE session_locks (
  id_hash BLOB PRIMARY KEY,   -- the locked session's, as sessions.id_hash
  owner   TEXT NOT NULL,      -- the holder's token, one per request
  expires INTEGER NOT NULL    -- the end of the lease, unix seconds
) WITHOUT ROWID;
)sql",
    // 5 -> 6: an item's type beside its value (store/session.h ItemType):
    // 'string' (what every item was) or 'json' (the value is JSON text).
    // The PHP bridge kept its non-strings as "json:" and their JSON inside
    // the value; those become JSON items without the prefix. A string that
    // merely began with "json:" was stored by the bridge as json:"json:..."
    // and becomes the JSON string "json:..."; a value with the prefix whose
    // rest is not JSON (another page's own string) stays as it is, as the
    // bridge read it. Older members of a farm do not know the column:
    // their writes leave a new item 'string', and an item they overwrite
    // keeps its type (docs/farm.md, "Rolling upgrades").
    R"sql(
ALTER TABLE items ADD COLUMN type TEXT NOT NULL DEFAULT 'string' CHECK (type IN ('string', 'json'));
UPDATE items SET value = substr(value, 6), type = 'json'
  WHERE typeof(value) = 'text' AND substr(value, 1, 5) = 'json:' AND json_valid(substr(value, 6));
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

void Migrate(Db& db) {
  Transaction tx(db);  // IMMEDIATE: two processes starting at once migrate once
  const SchemaSteps& steps = SqliteSchemaSteps();
  SchemaLevel level = ReadSqliteSchemaLevel(db);
  RefuseUnusableSchema(level, steps.known(), "", 1);
  // A file a newer member expanded is left as it is.
  for (auto v = level.version; v < steps.known(); ++v) db.Exec(steps.expand[static_cast<std::size_t>(v)].c_str());
  if (level.version < steps.known()) db.Exec(("PRAGMA user_version = " + std::to_string(steps.known())).c_str());
  tx.Commit();
}

}  // namespace

SchemaSteps& SqliteSchemaStepsForTesting() {
  static SchemaSteps steps = [] {
    SchemaSteps s;
    for (const char* sql : kMigrations) s.expand.emplace_back(sql);
    return s;
  }();
  return steps;
}
const SchemaSteps& SqliteSchemaSteps() { return SqliteSchemaStepsForTesting(); }

SchemaLevel ReadSqliteSchemaLevel(Db& db) {
  SchemaLevel level;
  level.version = db.QueryInt("PRAGMA user_version");
  if (db.QueryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sessiond_schema'"))
    level.required = db.QueryInt("SELECT coalesce(max(required), 0) FROM sessiond_schema");
  return level;
}

namespace {

// Units of work one leader takes into one transaction at most: bounds how
// long the last of them waits, and how much one failed COMMIT fails.
constexpr std::size_t kMaxBatch = 64;

// A Write() waiting for its unit to be run and committed.
struct Pending {
  const std::function<void(StoreWriter&)>* unit;
  std::exception_ptr error;  // the unit's own, or its batch's
  bool done = false;
};

// What the writers of one file in this process share.
//
// They take turns on `writer` before asking SQLite for the write lock.
// Without it, sixteen threads committing at once meet SQLite's busy handler,
// which sleeps 1, 2, 5, 10... ms between tries: throughput falls and p99
// latency reaches hundreds of ms. Other processes on the same file still
// wait through the busy timeout.
//
// Group commit: a write transaction costs one fsync (synchronous FULL), and
// a disk does only so many of those a second. So Write() queues its unit;
// the first waiting thread becomes the leader, takes the queued units (up
// to kMaxBatch) into one transaction on its own connection, each in a
// savepoint of its own, commits once, and wakes their callers. Units that
// arrive meanwhile wait for the next leader, and share its fsync.
struct FileWriters {
  std::mutex writer;  // held around every write transaction of this process
  std::mutex mutex;   // guards the members below
  std::condition_variable changed;  // queued, or a batch is done
  std::deque<Pending*> queue;
  bool leading = false;    // a leader is gathering or running a batch
  std::size_t gather = 0;  // tests: the next leader waits for this many queued units
  std::uint64_t batches = 0;  // transactions the leaders ran, for tests
  std::uint64_t finished = 0;  // transactions the leaders finished (committed or not)
  std::function<void()> during_gc_batch;  // tests: runs in each gc batch's transaction
};

// The writers of the file at `path`, by the file's device and inode: two
// spellings of one file ("sessions.db", "./sessions.db", a symbolic link)
// share one queue and one turn, and a file put in place of another (a
// restored backup) gets its own. A path with no file (yet, or any more: the
// file was deleted under its writers) goes by the file it last named.
FileWriters& WritersOf(const std::string& path) {
  static std::mutex registry_mutex;
  static std::map<std::string, std::unique_ptr<FileWriters>> registry;
  static std::map<std::string, std::string> last_file;  // path -> the key it last named
  struct stat st;
  const bool exists = ::stat(path.c_str(), &st) == 0;
  std::lock_guard lock(registry_mutex);
  std::string key;
  if (exists) {
    key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    last_file[path] = key;
  } else {
    auto it = last_file.find(path);
    key = it != last_file.end() ? it->second : "path:" + path;
  }
  auto& w = registry[key];
  if (!w) w = std::make_unique<FileWriters>();
  return *w;
}

}  // namespace


struct SqliteBackend::Conn {
  Conn(const StoreOptions& o, bool create)
      : opts(o),
        db(o.db, create),
        shared(WritersOf(o.db)),  // the file exists now: db created it if it had to
        writer(shared.writer),
        ready(Setup(db, o)),
        load(db, ("SELECT s.created, s.accessed, i.key, i.value, i.type FROM sessions s "
                  "LEFT JOIN items i ON i.id_hash = s.id_hash WHERE s.id_hash = ?1 AND " +
                  sql::Alive(Terms("s.")))
                     .c_str()),
        touch(db, ("UPDATE sessions SET accessed = ?2, expires = " + sql::ExpiryAfterTouch("min", Terms("")) +
                   " WHERE id_hash = ?1 AND " + sql::Alive(Terms("")))
                      .c_str()),
        alive(db, ("SELECT 1 FROM sessions WHERE id_hash = ?1 AND " + sql::Alive(Terms(""))).c_str()),
        insert_session(db, ("INSERT INTO sessions (id_hash, created, accessed, expires) "
                            "VALUES (?1, ?2, ?2, " + sql::ExpiryOfNew("min", Terms("")) + ")")
                               .c_str()),
        delete_session(db, "DELETE FROM sessions WHERE id_hash = ?1"),
        rename_session(db, "UPDATE sessions SET id_hash = ?2 WHERE id_hash = ?1"),
        set_item(db, "INSERT INTO items (id_hash, key, value, type) VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT (id_hash, key) DO UPDATE SET value = excluded.value, type = excluded.type"),
        remove_item(db, "DELETE FROM items WHERE id_hash = ?1 AND key = ?2"),
        clear_items(db, "DELETE FROM items WHERE id_hash = ?1"),
        totals(db, "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + "
                   "length(CAST(value AS BLOB))), 0) FROM items WHERE id_hash = ?1"),
        gc(db, sql::SweepExpired("?1", "?2").c_str()),
        holds(db, "SELECT 1 FROM sessions WHERE id_hash = ?1"),
        forward(db, "INSERT INTO forwards (old_hash, new_hash, expires, sealed) VALUES (?1, ?2, ?3, ?4)"),
        forwarded(db, "SELECT new_hash, sealed FROM forwards WHERE old_hash = ?1 AND expires > ?2"),
        gc_forwards(db, "DELETE FROM forwards WHERE old_hash IN "
                        "(SELECT old_hash FROM forwards WHERE expires <= ?1 LIMIT ?2)"),
        // ?1 the digest, ?2 now, ?3 the owner, ?4 the lease.
        take_lock(db, "INSERT INTO session_locks (id_hash, owner, expires) VALUES (?1, ?3, ?2 + ?4) "
                      "ON CONFLICT (id_hash) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
                      "WHERE session_locks.expires <= ?2"),
        holds_lock(db, "SELECT 1 FROM session_locks WHERE id_hash = ?1 AND owner = ?3 AND expires > ?2"),
        release_lock(db, "DELETE FROM session_locks WHERE id_hash = ?1 AND owner = ?2"),
        gc_locks(db, "DELETE FROM session_locks WHERE expires <= ?1"),
        savepoint(db, "SAVEPOINT unit"),
        release(db, "RELEASE unit"),
        rollback_to(db, "ROLLBACK TO unit") {}

  // The terms of every timed statement: ?2 now, ?3 idle, ?4 absolute (Timed binds them).
  static sql::LiveTerms Terms(std::string_view row) { return {row, "?2", "?3", "?4"}; }

  // Sets the pragmas and migrates before any statement is prepared against the schema.
  static bool Setup(Db& db, const StoreOptions& o) {
    db.CheckWritable();
    db.SetBusyTimeout(o.busy_timeout_ms);
    // SQLite answers with the mode it is in: when it cannot use a WAL (no
    // shared memory for the -shm file: a network file system, a VFS without
    // it) it stays in its rollback journal, where every read blocks writers
    // and a commit waits for readers. Refused, rather than served slowly.
    std::string mode = db.QueryText("PRAGMA journal_mode = WAL");
    if (mode != "wal")
      throw StoreError("database file " + o.db + " cannot be put in WAL mode (SQLite left it in journal mode \"" +
                           mode + "\"); WAL needs shared memory beside the file (the -shm), which network file "
                           "systems do not give: put the database on a local file system",
                       1, false);
    // A WAL grows as long as readers keep a checkpoint from reaching its end
    // (a burst of writes, a big gc, a long `sessiond list`), and SQLite
    // reuses the file from its start afterwards without shrinking it. Past
    // this size it is truncated back to it when it is reused: four times
    // what the automatic checkpoint (1000 pages) lets accumulate, so the
    // usual WAL is never cut, only one a burst left behind.
    db.Exec(("PRAGMA journal_size_limit = " + std::to_string(kWalSizeLimit)).c_str());
    std::string sync = o.synchronous;
    if (sync != "FULL" && sync != "NORMAL" && sync != "EXTRA" && sync != "OFF")
      throw StoreError("synchronous must be FULL, NORMAL, EXTRA or OFF, not " + sync, 1, false);
    db.Exec(("PRAGMA synchronous = " + sync).c_str());
    db.Exec("PRAGMA foreign_keys = ON");
    // Pages are read with read(), never through a memory map (mmap_size 0,
    // whatever SQLite was built with). A mapped page the kernel cannot read
    // (a disk's I/O error, a file truncated by someone else) is SIGBUS in
    // whichever thread touched it, and every request in flight dies with the
    // process; read() returns the error, and only that request fails (500).
    db.Exec("PRAGMA mmap_size = 0");
    Migrate(db);
    db.NoteSidecars();  // the transaction above opened the WAL
    return true;
  }

  // Called first by Load, Write and CollectGarbage: when the file at the
  // path is another one than `conn` has open (a restored backup moved into
  // place, a file another sessiond created after this one was deleted),
  // replaces `conn` by one on that file. When nothing is at the path, keeps
  // `conn`: reads are still right, and every write fails at its COMMIT
  // (Transaction::Commit) until a file is back or sessiond restarts.
  static void Follow(std::unique_ptr<Conn>& conn) {
    Conn& old = *conn;
    if (!old.db.HasMoved() || !old.db.FileExists()) return;
    std::lock_guard lock(old.writer);
    bool removed;
    {
      // The old file's -wal and -shm are still at the path, and SQLite would
      // take them for the new file's: it would show the old file's latest
      // pages over the new one and checkpoint them into it, undoing a
      // restored backup. Remove them first, holding the old file's write
      // lock, so that of all connections to the old file, in any process,
      // one at a time decides, and none removes the new file's own.
      Transaction hold(old.db);
      removed = old.db.RemoveOwnSidecars();
    }  // rolled back: nothing was written
    // Built before the old one goes: if the new file cannot be used (corrupt,
    // newer schema, read-only), this throws and reads go on from the old one.
    conn = std::make_unique<Conn>(old.opts, false);
    LogLine("store: database file " + conn->opts.db + " was replaced; reopened it" +
            (removed ? " (and removed the -wal and -shm the old file left beside it)" : ""));
  }

  Stmt& Bound(Stmt& s, const IdDigest& d) { return s.BindBlob(1, d.data(), d.size()); }

  // Binds ?2 now, ?3 idle, ?4 absolute: the expiry parameters every timed query uses.
  Stmt& Timed(Stmt& s, std::int64_t now) {
    return s.Bind(2, now).Bind(3, opts.timeouts.idle).Bind(4, opts.timeouts.absolute);
  }

  StoreOptions opts;
  Db db;
  FileWriters& shared;
  std::mutex& writer;  // held around every write transaction
  bool ready;  // Setup() ran: the schema exists before the statements below are prepared
  Stmt load, touch, alive, insert_session, delete_session, rename_session, set_item, remove_item,
      clear_items, totals, gc, holds, forward, forwarded, gc_forwards, take_lock, holds_lock, release_lock,
      gc_locks, savepoint, release, rollback_to;
  WritePacer gc_pacer;  // between a sweep's batches, writers of other processes get the lock
};

namespace {

// The writer a unit of work gets: the statements of the connection whose
// transaction it runs in.
class SqliteWriter final : public StoreWriter {
 public:
  explicit SqliteWriter(SqliteBackend::Conn& c) : c_(c) {}

  bool Touch(const IdDigest& d, std::int64_t now) override {
    c_.Timed(c_.Bound(c_.touch, d), now).Run();
    return c_.db.Changes() != 0;
  }
  bool Alive(const IdDigest& d, std::int64_t now) override {
    Stmt::Scope scope(c_.alive);
    return c_.Timed(c_.Bound(c_.alive, d), now).Step();
  }
  void Insert(const IdDigest& d, std::int64_t now) override { c_.Timed(c_.Bound(c_.insert_session, d), now).Run(); }
  void SetItem(const IdDigest& d, std::string_view key, std::string_view value, ItemType type) override {
    c_.Bound(c_.set_item, d).Bind(2, key).Bind(3, value).Bind(4, std::string_view(TypeName(type))).Run();
  }
  void RemoveItem(const IdDigest& d, std::string_view key) override { c_.Bound(c_.remove_item, d).Bind(2, key).Run(); }
  void ClearItems(const IdDigest& d) override { c_.Bound(c_.clear_items, d).Run(); }
  std::pair<std::size_t, std::size_t> Totals(const IdDigest& d) override {
    Stmt::Scope scope(c_.totals);
    c_.Bound(c_.totals, d).Step();
    return {static_cast<std::size_t>(c_.totals.Int(0)), static_cast<std::size_t>(c_.totals.Int(1))};
  }
  void Rename(const IdDigest& from, const IdDigest& to) override {
    c_.Bound(c_.rename_session, from).BindBlob(2, to.data(), to.size()).Run();
  }
  void Delete(const IdDigest& d) override { c_.Bound(c_.delete_session, d).Run(); }
  void Forward(const IdDigest& from, const IdDigest& to, const SealedId& sealed, std::int64_t now) override {
    c_.Bound(c_.forward, from)
        .BindBlob(2, to.data(), to.size())
        .Bind(3, now + c_.opts.timeouts.grace)
        .BindBlob(4, sealed.data(), sealed.size())
        .Run();
  }
  SessionStore::LockOutcome TakeLock(const IdDigest& d, std::string_view owner, std::int64_t now,
                                     std::int64_t lease) override {
    if (!Alive(d, now)) return SessionStore::LockOutcome::NoSession;
    c_.Bound(c_.take_lock, d).Bind(2, now).Bind(3, owner).Bind(4, lease).Run();
    return c_.db.Changes() != 0 ? SessionStore::LockOutcome::Taken : SessionStore::LockOutcome::Held;
  }
  // The unit runs in the write transaction, which no other connection can
  // enter before it ends: the lock stays as checked.
  bool HoldsLock(const IdDigest& d, std::string_view owner, std::int64_t now) override {
    Stmt::Scope scope(c_.holds_lock);
    return c_.Bound(c_.holds_lock, d).Bind(2, now).Bind(3, owner).Step();
  }
  void ReleaseLock(const IdDigest& d, std::string_view owner) override {
    c_.Bound(c_.release_lock, d).Bind(2, owner).Run();
  }

 private:
  SqliteBackend::Conn& c_;
};

}  // namespace

SqliteBackend::SqliteBackend(const StoreOptions& options) : conn_(std::make_unique<Conn>(options, true)) {}
SqliteBackend::~SqliteBackend() = default;

std::optional<Session> SqliteBackend::Load(const IdDigest& d, std::string_view id, std::int64_t now) {
  Conn::Follow(conn_);
  Conn& c = *conn_;
  // One statement, so the session row and its items come from one snapshot.
  Stmt::Scope scope(c.load);
  c.Timed(c.Bound(c.load, d), now);
  std::optional<Session> s;
  while (c.load.Step()) {
    if (!s) {
      s.emplace();
      s->id = std::string(id);
      s->created = c.load.Int(0);
      s->accessed = c.load.Int(1);
      s->now = now;
    }
    std::string key = c.load.Bytes(2);
    if (key.empty()) continue;
    if (c.load.Bytes(4) == "json") s->json.insert(key);
    s->items.emplace(std::move(key), c.load.Bytes(3));
  }
  return s;
}

namespace {

// Runs `batch` in one transaction on `c`, each unit in a savepoint: a unit
// that throws is undone alone and keeps its exception. When BEGIN or COMMIT
// fails, or a unit's error ended the whole transaction (SQLite rolls back by
// itself on some I/O errors and a full disk), every unit of the batch that
// has no error of its own gets that one: none of their writes was kept.
void RunBatch(SqliteBackend::Conn& c, const std::vector<Pending*>& batch) {
  try {
    std::lock_guard lock(c.writer);
    Transaction tx(c.db);
    SqliteWriter w(c);
    for (Pending* p : batch) {
      c.savepoint.Run();
      try {
        (*p->unit)(w);
      } catch (...) {
        p->error = std::current_exception();
        if (!c.db.InTransaction()) throw;
        c.rollback_to.Run();
      }
      c.release.Run();
    }
    tx.Commit();  // durable when it returns, under the configured synchronous
  } catch (...) {
    std::exception_ptr failed = std::current_exception();
    for (Pending* p : batch)
      if (!p->error) p->error = failed;
  }
}

}  // namespace

void SqliteBackend::Write(const std::function<void(StoreWriter&)>& unit) {
  Conn::Follow(conn_);
  FileWriters& f = conn_->shared;
  Pending mine{&unit, nullptr, false};
  std::unique_lock lock(f.mutex);
  f.queue.push_back(&mine);
  f.changed.notify_all();
  while (!mine.done) {
    if (f.leading) {
      f.changed.wait(lock);
      continue;
    }
    // The leader: runs what is queued, its own unit among it unless more than
    // a batch waited before it (then it leads again, or another does).
    f.leading = true;
    if (f.gather) {
      f.changed.wait(lock, [&f] { return f.queue.size() >= f.gather; });
      f.gather = 0;
    }
    std::vector<Pending*> batch;
    while (!f.queue.empty() && batch.size() < kMaxBatch) {
      batch.push_back(f.queue.front());
      f.queue.pop_front();
    }
    ++f.batches;
    lock.unlock();
    RunBatch(*conn_, batch);  // the units run on this thread, on this connection
    lock.lock();
    for (Pending* p : batch) p->done = true;
    ++f.finished;
    f.leading = false;  // the next waiter leads
    f.changed.notify_all();
  }
  lock.unlock();
  if (mine.error) std::rethrow_exception(mine.error);
}

void SqliteBackend::GatherNextBatchForTesting(const std::string& path, std::size_t units) {
  FileWriters& f = WritersOf(path);
  std::lock_guard lock(f.mutex);
  f.gather = units;
}

std::uint64_t SqliteBackend::BatchesForTesting(const std::string& path) {
  FileWriters& f = WritersOf(path);
  std::lock_guard lock(f.mutex);
  return f.batches;
}

std::size_t SqliteBackend::CollectGarbage(std::int64_t now, std::size_t batch) {
  Conn::Follow(conn_);
  Conn& c = *conn_;
  FileWriters& f = c.shared;
  std::function<void()> hook;
  c.gc_pacer.Begin();
  {
    // Writers of this process that are waiting go first: the sweep takes the
    // write lock again right after giving it back (the next batch), and a
    // mutex is no queue, so the thread that just let go usually wins it back
    // before a waiting one wakes: 400k expired sessions held requests for
    // seconds. So when a leader is running or units are queued, wait until
    // a leader has finished one transaction (or none is left to run): a
    // writer waits at most for one batch of the sweep.
    std::unique_lock lock(f.mutex);
    if (f.leading || !f.queue.empty()) {
      std::uint64_t seen = f.finished;
      f.changed.wait(lock, [&f, seen] { return f.finished != seen || (!f.leading && f.queue.empty()); });
    }
    hook = f.during_gc_batch;
  }
  // Small batches in their own transactions: a writer never waits long on GC.
  std::lock_guard lock(c.writer);
  Transaction tx(c.db);
  c.gc.Bind(1, now).Bind(2, static_cast<std::int64_t>(batch)).Run();
  auto deleted = static_cast<std::size_t>(c.db.Changes());
  c.gc_locks.Bind(1, now).Run();  // few: only holders that died leave one
  if (hook) hook();
  tx.Commit();
  c.gc_pacer.End();
  return deleted;
}

void SqliteBackend::DuringGcBatchForTesting(const std::string& path, std::function<void()> hook) {
  FileWriters& f = WritersOf(path);
  std::lock_guard lock(f.mutex);
  f.during_gc_batch = std::move(hook);
}

// Prepared per call: it runs once per scrape, never on the hot path.
std::optional<std::int64_t> SqliteBackend::CountLive(std::int64_t now) {
  // Counted in the expiry index alone (it holds expires and the key): no
  // session row is read.
  Stmt count(conn_->db, ("SELECT count(*) FROM sessions WHERE " + sql::Unexpired("", "?1")).c_str());
  Stmt::Scope scope(count);
  count.Bind(1, now).Step();
  return count.Int(0);
}

bool SqliteBackend::Holds(const IdDigest& d) {
  Conn& c = *conn_;
  Stmt::Scope scope(c.holds);
  return c.Bound(c.holds, d).Step();
}

std::optional<Forwarding> SqliteBackend::Forwarded(const IdDigest& d, std::int64_t now) {
  Conn::Follow(conn_);
  Conn& c = *conn_;
  Stmt::Scope scope(c.forwarded);
  if (!c.Bound(c.forwarded, d).Bind(2, now).Step()) return std::nullopt;
  std::string to = c.forwarded.Bytes(0), sealed = c.forwarded.Bytes(1);
  Forwarding f{};
  if (to.size() != f.to.size() || sealed.size() != f.sealed.size()) return std::nullopt;  // not ours
  std::copy(to.begin(), to.end(), f.to.begin());
  std::copy(sealed.begin(), sealed.end(), f.sealed.begin());
  return f;
}

std::size_t SqliteBackend::CollectForwards(std::int64_t now, std::size_t batch) {
  Conn::Follow(conn_);
  Conn& c = *conn_;
  std::lock_guard lock(c.writer);
  Transaction tx(c.db);
  c.gc_forwards.Bind(1, now).Bind(2, static_cast<std::int64_t>(batch)).Run();
  auto deleted = static_cast<std::size_t>(c.db.Changes());
  tx.Commit();
  return deleted;
}

// Prepared per call: once per heartbeat. Each its own short transaction,
// under this process's write lock like every write of the file.
void SqliteBackend::RecordMember(const Member& member, std::int64_t now) {
  Conn::Follow(conn_);
  Conn& c = *conn_;
  std::lock_guard lock(c.writer);
  Transaction tx(c.db);
  Stmt upsert(c.db,
              "INSERT INTO sessiond_members (member, release, schema, started, seen) VALUES (?1, ?2, ?3, ?4, ?5) "
              "ON CONFLICT (member) DO UPDATE SET release = excluded.release, schema = excluded.schema, "
              "seen = excluded.seen");
  upsert.Bind(1, member.name).Bind(2, member.release).Bind(3, std::int64_t{SqliteSchemaSteps().known()});
  upsert.Bind(4, member.started ? member.started : now).Bind(5, now).Run();
  Stmt forget(c.db, "DELETE FROM sessiond_members WHERE seen < ?1");
  forget.Bind(1, now - kForgetAfter).Run();
  tx.Commit();
}

void SqliteBackend::ForgetMember(std::string_view name) {
  Conn& c = *conn_;
  std::lock_guard lock(c.writer);
  Transaction tx(c.db);
  Stmt forget(c.db, "DELETE FROM sessiond_members WHERE member = ?1");
  forget.Bind(1, name).Run();
  tx.Commit();
}

}  // namespace sessiond
