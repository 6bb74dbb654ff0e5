#include "store/sqlite/sqlite_admin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "store/liveness.h"
#include "store/sqlite/sqlite_backend.h"
#include "store/sqlite/sqlite_db.h"

namespace sessiond {
namespace {

constexpr int kError = 1;  // SQLITE_ERROR, for failures found here rather than by SQLite

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

class StmtRow final : public SqlRow {
 public:
  explicit StmtRow(const Stmt& s) : s_(s) {}
  bool Null(int column) const override { return s_.Null(column); }
  std::int64_t Int(int column) const override { return s_.Int(column); }
  std::string Bytes(int column) const override { return s_.Bytes(column); }

 private:
  const Stmt& s_;
};

// Binds the parameters `s` names. Keys and values are bound as they are
// stored (Stmt::Bind: TEXT when UTF-8 without NUL, else BLOB), so equal
// bytes compare equal.
Stmt& BindAll(Stmt& s, const std::vector<SqlParam>& params) {
  for (int i = 0; i < static_cast<int>(params.size()) && i < s.ParamCount(); ++i) {
    const SqlParam& p = params[static_cast<std::size_t>(i)];
    switch (p.kind) {
      case SqlParam::Kind::Int: s.Bind(i + 1, p.number); break;
      case SqlParam::Kind::Blob: s.BindBlob(i + 1, p.bytes.data(), p.bytes.size()); break;
      case SqlParam::Kind::Bytes: s.Bind(i + 1, p.bytes); break;
    }
  }
  return s;
}

// The SQLite file: reads in WAL snapshots that never block the server,
// writes in BEGIN IMMEDIATE transactions paced so the server's writers get
// the write lock between two of them.
class SqliteEngine final : public AdminEngine {
 public:
  explicit SqliteEngine(const SqliteAdminOptions& o)
      : opts(o), db(o.path, o.writable ? Db::Access::ReadWrite : Db::Access::ReadOnly) {
    db.SetBusyTimeout(o.busy_timeout_ms);
    // A file of schema version 1 has no triggers: its items follow their
    // session only through the foreign key's cascade, which needs this.
    if (o.writable) db.Exec("PRAGMA foreign_keys = ON");
    SchemaLevel level = ReadSqliteSchemaLevel(db);
    if (level.version == 0)
      throw StoreError(o.path + " is not a sessiond store (schema version 0; sessiond serve creates one)",
                       kError, false);
    RefuseUnusableSchema(level, SqliteSchemaSteps().known(), "", kError);
  }

  std::string Param(int n) const override { return "?" + std::to_string(n); }
  std::string Now(int n) const override { return Param(n); }
  std::string ByteLength(std::string_view column) const override {
    return "length(CAST(" + std::string(column) + " AS BLOB))";
  }
  // A digest typed into the shell as text is not one either.
  std::string NotADigest() const override { return "typeof(id_hash) != 'blob' OR length(id_hash) != 32"; }

  void Query(const std::string& sql, const std::vector<SqlParam>& params,
             const std::function<void(const SqlRow&)>& row) override {
    Stmt s(db, sql.c_str());
    BindAll(s, params);
    Stmt::Scope scope(s);
    StmtRow r(s);
    while (s.Step()) row(r);
  }

  std::size_t WriteEach(const std::string& sql, const std::vector<std::vector<SqlParam>>& each) override {
    pacer.Begin();
    Transaction tx(db);
    Stmt s(db, sql.c_str());
    std::size_t changed = 0;
    for (const std::vector<SqlParam>& params : each) {
      BindAll(s, params).Run();
      changed += static_cast<std::size_t>(db.Changes());
    }
    tx.Commit();
    pacer.End();
    return changed;
  }

  std::size_t SweepBatch(std::int64_t now, std::size_t batch) override {
    if (!sweep) sweep = std::make_unique<Stmt>(db, sql::SweepExpired("?1", "?2").c_str());
    pacer.Begin();
    Transaction tx(db);
    sweep->Bind(1, now).Bind(2, static_cast<std::int64_t>(batch)).Run();
    auto n = static_cast<std::size_t>(db.Changes());
    if (opts.during_gc_batch_for_testing) opts.during_gc_batch_for_testing();
    tx.Commit();
    pacer.End();
    return n;
  }

  bool writable() const override { return opts.writable; }
  int SchemaVersion() override { return static_cast<int>(db.QueryInt("PRAGMA user_version")); }
  int KnownSchemaVersion() const override { return SqliteSchemaSteps().known(); }
  int ItemTypesSince() const override { return kSqliteItemTypesSince; }

  void AddSizes(StoreStats& st) override {
    st.free_bytes = db.QueryInt("PRAGMA freelist_count") * db.QueryInt("PRAGMA page_size");
    st.file_bytes = FileSize(opts.path);
    st.wal_bytes = FileSize(opts.path + "-wal");
  }

  void CheckStorage(bool quick, std::vector<std::string>& problems) override {
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
  }

  SchemaLevel Level() override { return ReadSqliteSchemaLevel(db); }
  const SchemaSteps& Steps() const override { return SqliteSchemaSteps(); }
  bool HasMembers() override {
    return db.QueryInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'sessiond_members'") != 0;
  }
  // The write lock (IMMEDIATE) also holds off a sessiond that starts: its
  // migration takes it too, and then finds the new required version.
  void Contract(const std::vector<std::string>& steps, int required, const std::vector<Check>& checks,
                const std::vector<SqlParam>& params) override {
    Transaction tx(db);
    for (const Check& check : checks) {
      std::int64_t n = 0;
      Query(check.sql, params, [&](const SqlRow& r) { n = r.Int(0); });
      if (n != 0) throw StoreError(check.refused, kError, false);
    }
    for (const std::string& sql : steps) db.Exec(sql.c_str());
    db.Exec(("UPDATE sessiond_schema SET required = " + std::to_string(required)).c_str());
    tx.Commit();
  }

  void CheckSchema(int version, std::vector<std::string>& problems) override {
    if (version >= 2 &&
        db.QueryInt("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' "
                    "AND name IN ('sessions_delete_items', 'sessions_rename_items')") != 2)
      problems.push_back("a trigger of schema version 2 is missing (sessions_delete_items, sessions_rename_items)");
  }

  void Backup(const std::string& path) override {
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
      Stmt vacuum(db, "VACUUM INTO ?1");
      vacuum.Bind(1, std::string_view(path)).Run();
      Sync(path, O_RDONLY);
      std::string dir = std::filesystem::path(path).parent_path().string();
      Sync(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
    } catch (...) {
      ::unlink(path.c_str());
      throw;
    }
  }

  SqliteAdminOptions opts;
  Db db;
  WritePacer pacer;  // one for every series of writes this instance makes
  std::unique_ptr<Stmt> sweep;
};

}  // namespace

SqliteAdmin::SqliteAdmin(const SqliteAdminOptions& options)
    : SqlAdmin(std::make_unique<SqliteEngine>(options), options.after_scan_for_testing) {}

}  // namespace sessiond
