#include "store/sqlite_store.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "log/log.h"
#include "store/session_id.h"
#include "store/sqlite_db.h"

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
};
static_assert(std::size(kMigrations) == kSchemaVersion);

void Migrate(Db& db) {
  Transaction tx(db);  // IMMEDIATE: two processes starting at once migrate once
  auto version = db.QueryInt("PRAGMA user_version");
  if (version > kSchemaVersion)
    throw StoreError("database schema version " + std::to_string(version) +
                         " is newer than this sessiond supports (" +
                         std::to_string(kSchemaVersion) + ")",
                     1, false);
  for (auto v = version; v < kSchemaVersion; ++v) db.Exec(kMigrations[v]);
  if (version != kSchemaVersion)
    db.Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  tx.Commit();
}

void CheckItemLimits(const std::vector<Change>& changes, const SessionLimits& limits) {
  auto check = [&](const std::string& key, const std::string& value) {
    if (key.empty()) throw LimitError("empty session key");
    if (key.size() > limits.max_key_bytes)
      throw LimitError("session key of " + std::to_string(key.size()) + " bytes exceeds max_key_bytes");
    if (value.size() > limits.max_value_bytes)
      throw LimitError("session value of " + std::to_string(value.size()) +
                       " bytes exceeds max_value_bytes");
  };
  for (const Change& c : changes) {
    if (c.kind == Change::Kind::Set) check(c.key, c.value);
    if (c.kind == Change::Kind::Replace)
      for (const auto& [k, v] : c.items) check(k, v);
  }
}

void CheckTotals(std::size_t items, std::size_t bytes, const SessionLimits& limits) {
  if (items > limits.max_items)
    throw LimitError("session of " + std::to_string(items) + " items exceeds max_items");
  if (bytes > limits.max_session_bytes)
    throw LimitError("session of " + std::to_string(bytes) + " bytes exceeds max_session_bytes");
}

bool Writes(const std::vector<Change>& changes) {
  return std::any_of(changes.begin(), changes.end(), [](const Change& c) {
    return c.kind == Change::Kind::Set || c.kind == Change::Kind::Replace;
  });
}

// Writers of one file in this process take turns on a mutex before asking
// SQLite for the write lock. Without it, sixteen threads committing at once
// meet SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between tries:
// throughput falls and p99 latency reaches hundreds of ms. Other processes on
// the same file still wait through the busy timeout.
std::mutex& WriterMutex(const std::string& path) {
  static std::mutex registry_mutex;
  static std::map<std::string, std::unique_ptr<std::mutex>> registry;
  std::lock_guard lock(registry_mutex);
  auto& m = registry[path];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

}  // namespace

struct SqliteStore::Impl {
  Impl(const SqliteOptions& o, bool create)
      : opts(o),
        writer(WriterMutex(o.path)),
        db(o.path, create),
        ready(Setup(db, o)),
        load(db, "SELECT s.created, s.accessed, i.key, i.value FROM sessions s "
                             "LEFT JOIN items i ON i.id_hash = s.id_hash "
                             "WHERE s.id_hash = ?1 AND s.expires > ?2 "
                             "AND s.accessed > ?2 - ?3 AND s.created > ?2 - ?4"),
        touch(db, "UPDATE sessions SET accessed = ?2, expires = min(?2 + ?3, created + ?4) "
                  "WHERE id_hash = ?1 AND expires > ?2 AND accessed > ?2 - ?3 AND created > ?2 - ?4"),
        alive(db, "SELECT 1 FROM sessions WHERE id_hash = ?1 AND expires > ?2 "
                  "AND accessed > ?2 - ?3 AND created > ?2 - ?4"),
        insert_session(db, "INSERT INTO sessions (id_hash, created, accessed, expires) "
                           "VALUES (?1, ?2, ?2, ?2 + min(?3, ?4))"),
        delete_session(db, "DELETE FROM sessions WHERE id_hash = ?1"),
        rename_session(db, "UPDATE sessions SET id_hash = ?2 WHERE id_hash = ?1"),
        set_item(db, "INSERT INTO items (id_hash, key, value) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT (id_hash, key) DO UPDATE SET value = excluded.value"),
        remove_item(db, "DELETE FROM items WHERE id_hash = ?1 AND key = ?2"),
        clear_items(db, "DELETE FROM items WHERE id_hash = ?1"),
        totals(db, "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + "
                   "length(CAST(value AS BLOB))), 0) FROM items WHERE id_hash = ?1"),
        gc(db, "DELETE FROM sessions WHERE id_hash IN "
               "(SELECT id_hash FROM sessions WHERE expires <= ?1 LIMIT ?2)") {}

  // Sets the pragmas and migrates before any statement is prepared against the schema.
  static bool Setup(Db& db, const SqliteOptions& o) {
    db.CheckWritable();
    db.SetBusyTimeout(o.busy_timeout_ms);
    db.QueryInt("PRAGMA journal_mode = WAL");
    std::string sync = o.synchronous;
    if (sync != "FULL" && sync != "NORMAL" && sync != "EXTRA" && sync != "OFF")
      throw StoreError("synchronous must be FULL, NORMAL, EXTRA or OFF, not " + sync, 1, false);
    db.Exec(("PRAGMA synchronous = " + sync).c_str());
    db.Exec("PRAGMA foreign_keys = ON");
    // Read the file through a shared memory map instead of pread() into each
    // connection's own 2 MiB page cache: with a million sessions a lookup
    // otherwise costs a system call per B-tree page (p99 3x that of 10k
    // sessions, measured by bench/store_bench). Address space only; the
    // pages are the kernel's page cache, shared by every connection.
    db.QueryInt("PRAGMA mmap_size = 1073741824");
    Migrate(db);
    db.NoteSidecars();  // the transaction above opened the WAL
    return true;
  }

  // Called first by Load, Commit and CollectGarbage: when the file at the
  // path is another one than `impl` has open (a restored backup moved into
  // place, a file another sessiond created after this one was deleted),
  // replaces `impl` by one on that file. When nothing is at the path, keeps
  // `impl`: reads are still right, and every write fails at its COMMIT
  // (Transaction::Commit) until a file is back or sessiond restarts.
  static void Follow(std::unique_ptr<Impl>& impl) {
    Impl& old = *impl;
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
    impl = std::make_unique<Impl>(old.opts, false);
    LogLine("store: database file " + impl->opts.path + " was replaced; reopened it" +
            (removed ? " (and removed the -wal and -shm the old file left beside it)" : ""));
  }

  Stmt& Bound(Stmt& s, const IdDigest& d) {
    s.BindBlob(1, d.data(), d.size());
    return s;
  }

  // Binds ?2 now, ?3 idle, ?4 absolute: the expiry parameters every timed query uses.
  Stmt& Timed(Stmt& s, std::int64_t now) {
    return s.Bind(2, now).Bind(3, opts.idle_timeout).Bind(4, opts.absolute_timeout);
  }

  // Stores `items` as a new session; returns its id.
  std::string Create(const Items& items, std::int64_t now) {
    std::string id = NewSessionId();
    IdDigest d = DigestOf(id);
    Timed(Bound(insert_session, d), now).Run();
    for (const auto& [k, v] : items) Bound(set_item, d).Bind(2, k).Bind(3, v).Run();
    return id;
  }

  void ApplyInPlace(const IdDigest& d, const std::vector<Change>& changes) {
    for (const Change& c : changes) {
      switch (c.kind) {
        case Change::Kind::Set: Bound(set_item, d).Bind(2, c.key).Bind(3, c.value).Run(); break;
        case Change::Kind::Remove: Bound(remove_item, d).Bind(2, c.key).Run(); break;
        case Change::Kind::Replace:
          Bound(clear_items, d).Run();
          for (const auto& [k, v] : c.items) Bound(set_item, d).Bind(2, k).Bind(3, v).Run();
          break;
        case Change::Kind::Clear: Bound(clear_items, d).Run(); break;
      }
    }
  }

  SqliteOptions opts;
  std::mutex& writer;  // held around every write transaction
  Db db;
  bool ready;  // Setup() ran: the schema exists before the statements below are prepared
  Stmt load, touch, alive, insert_session, delete_session, rename_session, set_item, remove_item,
      clear_items, totals, gc;
};

SqliteStore::SqliteStore(const SqliteOptions& options) : impl_(std::make_unique<Impl>(options, true)) {}
SqliteStore::~SqliteStore() = default;

std::int64_t SqliteStore::touch_interval() const {
  return std::max<std::int64_t>(1, impl_->opts.idle_timeout / 10);
}

std::optional<Session> SqliteStore::Load(std::string_view id, std::int64_t now) {
  if (!IsWellFormedId(id)) return std::nullopt;
  Impl::Follow(impl_);
  Impl& m = *impl_;
  IdDigest d = DigestOf(id);
  // One statement, so the session row and its items come from one snapshot.
  Stmt::Scope scope(m.load);
  m.Timed(m.Bound(m.load, d), now);
  std::optional<Session> s;
  while (m.load.Step()) {
    if (!s) {
      s.emplace();
      s->id = std::string(id);
      s->created = m.load.Int(0);
      s->accessed = m.load.Int(1);
    }
    std::string key = m.load.Bytes(2);
    if (!key.empty()) s->items.emplace(std::move(key), m.load.Bytes(3));
  }
  return s;
}

CommitResult SqliteStore::Commit(const std::optional<Session>& loaded, const ChangeSet& cs,
                                 std::int64_t now) {
  Impl::Follow(impl_);
  Impl& m = *impl_;
  const SessionLimits& limits = m.opts.limits;
  CheckItemLimits(cs.changes, limits);

  if (!loaded) {
    // A new visitor: fold the changes in memory and store only if something is left.
    if (cs.abandon) return {};
    Items items;
    Apply(cs.changes, items);
    if (items.empty()) return {};
    std::size_t bytes = 0;
    for (const auto& [k, v] : items) bytes += k.size() + v.size();
    CheckTotals(items.size(), bytes, limits);
    std::lock_guard lock(m.writer);
    Transaction tx(m.db);
    std::string id = m.Create(items, now);
    tx.Commit();
    return {CommitResult::Outcome::Created, id};
  }

  IdDigest d = DigestOf(loaded->id);
  bool touch_due = now - loaded->accessed >= touch_interval();
  if (cs.empty()) {
    // A read. Write only when the last-access time is due for a refresh, so
    // most reads cost no write at all.
    if (!touch_due) return {};
    try {
      std::lock_guard lock(m.writer);
      Transaction tx(m.db);
      m.Timed(m.Bound(m.touch, d), now).Run();
      bool touched = m.db.Changes() != 0;  // not when the session has gone meanwhile
      tx.Commit();
      if (touched) return {CommitResult::Outcome::Updated, {}};
    } catch (const StoreError& e) {
      // The refresh is an optimisation of the read, not part of it: failing
      // the page (503 or 500) for it would be worse than a session that ends
      // a little early. The next read due tries again.
      LogLine(std::string("store: last access not refreshed: ") + e.what());
    }
    return {};
  }

  std::lock_guard lock(m.writer);
  Transaction tx(m.db);
  // The session may have expired, been abandoned or regenerated by another
  // request since it was loaded. When the last-access time is due, the touch
  // checks that; otherwise a read does, and the session row and its expiry
  // index entry stay as they are (two B-tree pages fewer in the WAL).
  bool alive;
  if (touch_due) {
    m.Timed(m.Bound(m.touch, d), now).Run();
    alive = m.db.Changes() != 0;
  } else {
    Stmt::Scope scope(m.alive);
    alive = m.Timed(m.Bound(m.alive, d), now).Step();
  }
  if (!alive) {
    // Gone: never resurrect the old id, and never make a fresh session in its
    // place either. The request that killed it may have set a cookie (a login
    // regenerates), and a fresh session's cookie would overwrite that one.
    // Nothing was written; the transaction rolls back.
    if (cs.abandon) return {CommitResult::Outcome::Abandoned, {}};
    return {CommitResult::Outcome::Gone, {}};
  }
  if (cs.abandon) {
    m.Bound(m.delete_session, d).Run();
    tx.Commit();
    return {CommitResult::Outcome::Abandoned, {}};
  }
  m.ApplyInPlace(d, cs.changes);
  if (Writes(cs.changes)) {
    Stmt::Scope scope(m.totals);
    m.Bound(m.totals, d).Step();
    CheckTotals(static_cast<std::size_t>(m.totals.Int(0)), static_cast<std::size_t>(m.totals.Int(1)),
                limits);
  }
  CommitResult result{CommitResult::Outcome::Updated, {}};
  if (cs.regenerate) {
    result = {CommitResult::Outcome::Regenerated, NewSessionId()};
    IdDigest fresh = DigestOf(result.id);
    m.Bound(m.rename_session, d).BindBlob(2, fresh.data(), fresh.size()).Run();
  }
  tx.Commit();
  return result;
}

std::size_t SqliteStore::CollectGarbage(std::int64_t now, std::size_t batch) {
  Impl::Follow(impl_);
  Impl& m = *impl_;
  // Small batches in their own transactions: a writer never waits long on GC.
  std::lock_guard lock(m.writer);
  Transaction tx(m.db);
  m.gc.Bind(1, now).Bind(2, static_cast<std::int64_t>(batch)).Run();
  auto deleted = static_cast<std::size_t>(m.db.Changes());
  tx.Commit();
  return deleted;
}

// The metrics' queries are prepared per call: they run once per scrape or
// per request with a dead cookie, never on the hot path.
std::optional<std::int64_t> SqliteStore::CountLive(std::int64_t now) {
  // Counted in the expiry index alone (it holds expires and the key): no
  // session row is read.
  Stmt count(impl_->db, "SELECT count(*) FROM sessions WHERE expires > ?1");
  Stmt::Scope scope(count);
  count.Bind(1, now).Step();
  return count.Int(0);
}

bool SqliteStore::HoldsExpired(std::string_view id, std::int64_t /*now*/) {
  if (!IsWellFormedId(id)) return false;
  // Load() found no live session under this id: a row that is still there
  // is one that expired (abandoned and regenerated ids have no row).
  Stmt held(impl_->db, "SELECT 1 FROM sessions WHERE id_hash = ?1");
  Stmt::Scope scope(held);
  IdDigest d = DigestOf(id);
  return held.BindBlob(1, d.data(), d.size()).Step();
}

}  // namespace sessiond
