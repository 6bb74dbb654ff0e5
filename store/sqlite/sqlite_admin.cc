#include "store/sqlite/sqlite_admin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_backend.h"

namespace sessiond {
namespace {

constexpr int kError = 1;  // SQLITE_ERROR, for failures found here rather than by SQLite

// Sessions deleted per transaction by Remove and RemoveWhere: the server's
// writers wait at most for one such batch (as for its own --gc-batch), and
// between two of them a WritePacer gives them the lock.
constexpr std::size_t kDeleteBatch = 500;

// Scans RemoveWhere makes, each followed by deletes by key, before it
// deletes by the items themselves under the write lock (see there).
constexpr int kLogoutScans = 4;

// A read transaction: the statements run inside it see one snapshot. In WAL
// mode it never blocks a writer.
class ReadTransaction {
 public:
  explicit ReadTransaction(Db& db) : db_(db) { db_.Exec("BEGIN"); }
  ~ReadTransaction() {
    try {
      db_.Exec("COMMIT");
    } catch (const StoreError&) {
      // Nothing was written; the connection closes soon anyway.
    }
  }
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Db& db_;
};

// " AND EXISTS (...)" per match: the session `session` (an SQL expression)
// holds that item. Keys and values are parameters `first`, `first` + 1, ...
std::string HoldsItems(std::size_t matches, const std::string& session, int first) {
  std::string sql;
  for (std::size_t i = 0; i < matches; ++i) {
    int k = first + 2 * static_cast<int>(i);
    sql += " AND EXISTS (SELECT 1 FROM items w WHERE w.id_hash = " + session + " AND w.key = ?" +
           std::to_string(k) + " AND w.value = ?" + std::to_string(k + 1) + ")";
  }
  return sql;
}

// Binds what HoldsItems asked for. Keys and values are bound as they are
// stored (Stmt::Bind: TEXT when UTF-8 without NUL, else BLOB), so equal bytes compare equal.
void BindItems(Stmt& s, const std::vector<ItemMatch>& where, int first) {
  for (std::size_t i = 0; i < where.size(); ++i) {
    int k = first + 2 * static_cast<int>(i);
    s.Bind(k, std::string_view(where[i].key)).Bind(k + 1, std::string_view(where[i].value));
  }
}

Stmt& BindDigest(Stmt& s, int index, const IdDigest& d) { return s.BindBlob(index, d.data(), d.size()); }

// The digest in `column`. A row typed into the shell may hold something
// shorter or longer: it is cut or padded with zeros (check reports it).
IdDigest DigestAt(const Stmt& s, int column) {
  std::string bytes = s.Bytes(column);
  IdDigest d{};
  std::copy_n(bytes.begin(), std::min(bytes.size(), d.size()), d.begin());
  return d;
}


std::int64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_size) : 0;
}

void Sync(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw StoreError("cannot sync " + path + ": " + std::strerror(e), kError, false);
  }
  ::close(fd);
}

}  // namespace

struct SqliteAdmin::Impl {
  explicit Impl(const SqliteAdminOptions& o)
      : opts(o), db(o.path, o.writable ? Db::Access::ReadWrite : Db::Access::ReadOnly) {
    db.SetBusyTimeout(o.busy_timeout_ms);
    // A file of schema version 1 has no triggers: its items follow their
    // session only through the foreign key's cascade, which needs this.
    if (o.writable) db.Exec("PRAGMA foreign_keys = ON");
    auto version = db.QueryInt("PRAGMA user_version");
    if (version == 0)
      throw StoreError(o.path + " is not a sessiond store (schema version 0; sessiond serve creates one)",
                       kError, false);
    if (version > kSchemaVersion)
      throw StoreError("database schema version " + std::to_string(version) +
                           " is newer than this sessiond supports (" + std::to_string(kSchemaVersion) + ")",
                       kError, false);
  }

  SqliteAdminOptions opts;
  Db db;
};

SqliteAdmin::SqliteAdmin(const SqliteAdminOptions& options) : impl_(std::make_unique<Impl>(options)) {}
SqliteAdmin::~SqliteAdmin() = default;

std::vector<SessionSummary> SqliteAdmin::List(const ListQuery& q, std::int64_t now) {
  std::string sql =
      "SELECT s.id_hash, s.created, s.accessed, s.expires, count(i.key), "
      "coalesce(sum(length(CAST(i.key AS BLOB)) + length(CAST(i.value AS BLOB))), 0) "
      "FROM sessions s LEFT JOIN items i ON i.id_hash = s.id_hash WHERE 1";
  if (q.which == ListQuery::Which::Live) sql += " AND s.expires > ?1";
  if (q.which == ListQuery::Which::Expired) sql += " AND s.expires <= ?1";
  sql += HoldsItems(q.where.size(), "s.id_hash", 2);
  sql += " GROUP BY s.id_hash ORDER BY s.created DESC, s.id_hash";
  int limit_at = 2 + 2 * static_cast<int>(q.where.size());
  if (q.limit) sql += " LIMIT ?" + std::to_string(limit_at);

  Stmt s(impl_->db, sql.c_str());
  if (q.which != ListQuery::Which::All) s.Bind(1, now);
  BindItems(s, q.where, 2);
  if (q.limit) s.Bind(limit_at, static_cast<std::int64_t>(q.limit));
  // One statement: one snapshot, read whole before anything is printed.
  Stmt::Scope scope(s);
  std::vector<SessionSummary> out;
  while (s.Step()) {
    SessionSummary row;
    row.digest = DigestAt(s, 0);
    row.created = s.Int(1);
    row.accessed = s.Int(2);
    row.expires = s.Int(3);
    row.items = static_cast<std::size_t>(s.Int(4));
    row.bytes = static_cast<std::size_t>(s.Int(5));
    out.push_back(row);
  }
  return out;
}

std::vector<IdDigest> SqliteAdmin::FindByPrefix(std::string_view prefix, std::size_t limit) {
  DigestRange range = PrefixRange(prefix);  // throws for what is not a prefix
  const std::string &lo = range.low, &hi = range.high;
  const bool bounded = range.bounded;

  std::string sql = "SELECT id_hash FROM sessions WHERE id_hash >= ?1";
  if (bounded) sql += " AND id_hash < ?2";
  sql += " ORDER BY id_hash LIMIT ?3";
  Stmt s(impl_->db, sql.c_str());
  s.BindBlob(1, lo.data(), lo.size());
  if (bounded) s.BindBlob(2, hi.data(), hi.size());
  s.Bind(3, static_cast<std::int64_t>(limit));
  Stmt::Scope scope(s);
  std::vector<IdDigest> out;
  while (s.Step()) out.push_back(DigestAt(s, 0));
  return out;
}

std::optional<SessionDetail> SqliteAdmin::Get(const IdDigest& digest) {
  Stmt s(impl_->db,
         "SELECT s.created, s.accessed, s.expires, i.key IS NOT NULL, i.key, i.value FROM sessions s "
         "LEFT JOIN items i ON i.id_hash = s.id_hash WHERE s.id_hash = ?1");
  BindDigest(s, 1, digest);
  Stmt::Scope scope(s);
  std::optional<SessionDetail> out;
  while (s.Step()) {
    if (!out) {
      out.emplace();
      out->summary.digest = digest;
      out->summary.created = s.Int(0);
      out->summary.accessed = s.Int(1);
      out->summary.expires = s.Int(2);
    }
    if (!s.Int(3)) continue;  // a session without items
    std::string key = s.Bytes(4), value = s.Bytes(5);
    out->summary.bytes += key.size() + value.size();
    out->items.emplace(std::move(key), std::move(value));
  }
  if (out) out->summary.items = out->items.size();
  return out;
}

std::size_t SqliteAdmin::Remove(const std::vector<IdDigest>& digests) {
  Db& db = impl_->db;
  Stmt del(db, "DELETE FROM sessions WHERE id_hash = ?1");
  std::size_t removed = 0;
  WritePacer pacer;
  for (std::size_t at = 0; at < digests.size(); at += kDeleteBatch) {
    pacer.Begin();
    Transaction tx(db);
    for (std::size_t i = at; i < std::min(digests.size(), at + kDeleteBatch); ++i) {
      BindDigest(del, 1, digests[i]).Run();
      removed += static_cast<std::size_t>(db.Changes());
    }
    tx.Commit();
    pacer.End();
  }
  return removed;
}

std::size_t SqliteAdmin::RemoveWhere(const std::vector<ItemMatch>& where) {
  if (where.empty()) throw std::invalid_argument("RemoveWhere needs at least one item to match");
  Db& db = impl_->db;
  const std::string holds = HoldsItems(where.size(), "s.id_hash", 1);
  // Find the sessions first, without the write lock: items have no index on
  // key and value, and scanning them inside BEGIN IMMEDIATE would hold the
  // server's writers for as long as the scan takes.
  Stmt find(db, ("SELECT s.id_hash FROM sessions s WHERE 1" + holds).c_str());
  // Then delete them by key, a batch per transaction, each only if it still matches.
  Stmt del(db, ("DELETE FROM sessions WHERE id_hash = ?1" + HoldsItems(where.size(), "?1", 2)).c_str());
  std::size_t removed = 0;
  WritePacer pacer;
  // A session regenerated between a scan and its delete has moved to another
  // key: the delete finds nothing, and the next scan finds it under its new
  // one. So scan again until a scan finds nothing: every session that held
  // the items when the last scan read its snapshot is gone.
  for (int round = 0;; ++round) {
    std::vector<IdDigest> found;
    {
      BindItems(find, where, 1);
      Stmt::Scope scope(find);
      while (find.Step()) found.push_back(DigestAt(find, 0));
    }
    if (found.empty()) return removed;
    if (round == kLogoutScans) {
      // Sessions that keep moving faster than we delete them (a client
      // regenerating in a loop): one delete of whatever matches, under the
      // write lock, which no regenerate can slip past.
      pacer.Begin();
      Transaction tx(db);
      Stmt all(db, ("DELETE FROM sessions WHERE id_hash IN (SELECT s.id_hash FROM sessions s WHERE 1" + holds +
                    ")").c_str());
      BindItems(all, where, 1);
      all.Run();
      removed += static_cast<std::size_t>(db.Changes());
      tx.Commit();
      return removed;
    }
    if (impl_->opts.after_scan_for_testing) impl_->opts.after_scan_for_testing();
    for (std::size_t at = 0; at < found.size(); at += kDeleteBatch) {
      pacer.Begin();
      Transaction tx(db);
      for (std::size_t i = at; i < std::min(found.size(), at + kDeleteBatch); ++i) {
        BindDigest(del, 1, found[i]);
        BindItems(del, where, 2);
        del.Run();
        removed += static_cast<std::size_t>(db.Changes());
      }
      tx.Commit();
      pacer.End();
    }
  }
}

std::size_t SqliteAdmin::CollectGarbage(std::int64_t now, std::size_t batch) {
  if (batch == 0) throw std::invalid_argument("CollectGarbage needs a batch of at least 1");
  Db& db = impl_->db;
  // The server's sweep: a batch per transaction, through the expiry index.
  Stmt gc(db, "DELETE FROM sessions WHERE id_hash IN "
              "(SELECT id_hash FROM sessions WHERE expires <= ?1 LIMIT ?2)");
  std::size_t total = 0;
  WritePacer pacer;  // the server's writers get the lock between two batches
  for (;;) {
    pacer.Begin();
    Transaction tx(db);
    gc.Bind(1, now).Bind(2, static_cast<std::int64_t>(batch)).Run();
    auto n = static_cast<std::size_t>(db.Changes());
    if (impl_->opts.during_gc_batch_for_testing) impl_->opts.during_gc_batch_for_testing();
    tx.Commit();
    pacer.End();
    total += n;
    if (n < batch) return total;
  }
}

StoreStats SqliteAdmin::Stats(std::int64_t now) {
  Db& db = impl_->db;
  StoreStats st;
  {
    ReadTransaction snapshot(db);
    Stmt sessions(db, "SELECT count(*), coalesce(sum(expires > ?1), 0), "
                      "min(CASE WHEN expires > ?1 THEN created END) FROM sessions");
    {
      Stmt::Scope scope(sessions);
      sessions.Bind(1, now).Step();
      auto all = static_cast<std::size_t>(sessions.Int(0));
      st.live = static_cast<std::size_t>(sessions.Int(1));
      st.expired = all - st.live;
      if (st.live) st.oldest = sessions.Int(2);
    }
    Stmt items(db, "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + "
                   "length(CAST(value AS BLOB))), 0) FROM items");
    {
      Stmt::Scope scope(items);
      items.Step();
      st.items = static_cast<std::size_t>(items.Int(0));
      st.bytes = static_cast<std::size_t>(items.Int(1));
    }
    st.schema_version = static_cast<int>(db.QueryInt("PRAGMA user_version"));
    st.free_bytes = db.QueryInt("PRAGMA freelist_count") * db.QueryInt("PRAGMA page_size");
  }
  st.file_bytes = FileSize(impl_->opts.path);
  st.wal_bytes = FileSize(impl_->opts.path + "-wal");
  return st;
}

std::vector<std::string> SqliteAdmin::Check(bool quick) {
  Db& db = impl_->db;
  std::vector<std::string> problems;
  // Each check on its own: a corrupt page that fails one must not hide the others.
  auto run = [&](auto check) {
    try {
      check();
    } catch (const StoreError& e) {
      problems.push_back(e.what());
    }
  };
  run([&] {
    Stmt s(db, quick ? "PRAGMA quick_check" : "PRAGMA integrity_check");
    Stmt::Scope scope(s);
    while (s.Step()) {
      std::string text = s.Bytes(0);
      if (text == "ok") continue;
      // One row may hold several lines ("*** in database main ***\nPage 2: ...").
      std::size_t from = 0;
      while (from <= text.size()) {
        std::size_t nl = std::min(text.find('\n', from), text.size());
        if (nl > from) problems.push_back(text.substr(from, nl - from));
        from = nl + 1;
      }
    }
  });
  run([&] {
    auto version = db.QueryInt("PRAGMA user_version");
    if (version < kSchemaVersion)
      problems.push_back("schema version " + std::to_string(version) + " is older than this sessiond's (" +
                         std::to_string(kSchemaVersion) + "): sessiond serve migrates it when it starts");
    if (version >= 2 &&
        db.QueryInt("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' "
                    "AND name IN ('sessions_delete_items', 'sessions_rename_items')") != 2)
      problems.push_back("a trigger of schema version 2 is missing (sessions_delete_items, sessions_rename_items)");
  });
  run([&] {
    auto orphans = db.QueryInt("SELECT count(*) FROM items WHERE id_hash NOT IN (SELECT id_hash FROM sessions)");
    if (orphans)
      problems.push_back(std::to_string(orphans) +
                         " items belong to no session (DELETE FROM items WHERE id_hash NOT IN "
                         "(SELECT id_hash FROM sessions) removes them)");
  });
  run([&] {
    auto bad = db.QueryInt("SELECT count(*) FROM sessions WHERE typeof(id_hash) != 'blob' OR length(id_hash) != 32");
    if (bad) problems.push_back(std::to_string(bad) + " sessions have an id_hash that is not a 32-byte digest");
  });
  return problems;
}

void SqliteAdmin::Backup(const std::string& path) {
  // Created here, 0600 whatever the umask, so the copy is never readable by
  // others, not even for a moment; O_EXCL: an existing file is never replaced.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    throw StoreError("cannot create " + path + ": " +
                         (e == EEXIST ? std::string("it exists, and a backup never replaces a file")
                                      : std::string(std::strerror(e))),
                     kError, false);
  }
  int chmodded = ::fchmod(fd, 0600);
  int e = errno;
  ::close(fd);
  try {
    if (chmodded != 0) throw StoreError("cannot chmod " + path + ": " + std::strerror(e), kError, false);
    // VACUUM INTO reads one snapshot (a read transaction: the server keeps
    // writing) and fills the empty file we made without changing its mode.
    Stmt vacuum(impl_->db, "VACUUM INTO ?1");
    vacuum.Bind(1, std::string_view(path)).Run();
    Sync(path, O_RDONLY);
    std::string dir = std::filesystem::path(path).parent_path().string();
    Sync(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

}  // namespace sessiond
