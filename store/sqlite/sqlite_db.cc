#include "store/sqlite/sqlite_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

namespace sessiond {
namespace {

// What may succeed when tried again later (StoreError::busy: HTTP 503, as
// PostgreSQL's class 53, insufficient resources): another writer holding the
// lock, and a full disk, which an operator or the sweep frees.
bool IsBusy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL;
}

bool IsTextSafe(std::string_view s) {
  // Valid UTF-8 with no NUL: stored as TEXT so people can read it.
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    if (c == 0) return false;
    if (c < 0x80) n = 1;
    else if ((c & 0xe0) == 0xc0 && c >= 0xc2) n = 2;
    else if ((c & 0xf0) == 0xe0) n = 3;
    else if ((c & 0xf8) == 0xf0 && c <= 0xf4) n = 4;
    else return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

Db::Db(const std::string& path, bool create) : path_(path) {
  // Create a missing file ourselves so that it, and the -wal/-shm files SQLite
  // makes with the same mode, are readable by the owner only. Only when it is
  // missing: closing any descriptor of a file drops every POSIX lock this
  // process holds on it, including those of other live SQLite connections.
  struct stat st;
  if (create && ::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      throw StoreError("cannot create " + path + ": " + std::strerror(errno), SQLITE_CANTOPEN, false);
    if (fd >= 0) ::close(fd);
  }
  Open(SQLITE_OPEN_READWRITE);
}

Db::Db(const std::string& path, Access access) : path_(path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw StoreError("cannot open " + path + ": " + std::strerror(errno), SQLITE_CANTOPEN, false);
  Open(access == Access::ReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
}

void Db::Open(int flags) {
  int rc = sqlite3_open_v2(path_.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("cannot open " + path_ + ": " + msg, rc, IsBusy(rc));
  }
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() { sqlite3_close_v2(db_); }

void Db::CheckWritable() const {
  // SQLite opens a file it may not write read-only without a word, and every
  // write would then fail; say so once, at start.
  if (sqlite3_db_readonly(db_, "main") == 1)
    throw StoreError("database file " + path_ + " is read-only", SQLITE_READONLY, false);
  // In WAL mode SQLite also creates and writes -wal and -shm files beside the
  // database (and deletes them when the last connection closes).
  std::string file = FileName();
  std::filesystem::path parent = std::filesystem::path(file).parent_path();
  std::string dir = parent.empty() ? std::string(".") : parent.string();
  if (::access(dir.c_str(), W_OK) != 0)
    throw StoreError("directory " + dir + " is not writable: SQLite keeps " + file + "-wal and " + file +
                         "-shm beside the database",
                     SQLITE_READONLY, false);
}

bool Db::HasMoved() {
  int moved = 0;
  int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_HAS_MOVED, &moved);
  if (rc == SQLITE_NOTFOUND) return false;  // a VFS that cannot tell
  Check(rc, "has moved");
  return moved != 0;
}

bool Db::FileExists() const { return IdOf(FileName()).present; }

std::string Db::FileName() const {
  const char* name = sqlite3_db_filename(db_, "main");
  return name && *name ? name : path_;
}

Db::FileId Db::IdOf(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return {};
  return {true, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

void Db::NoteSidecars() {
  wal_ = IdOf(FileName() + "-wal");
  shm_ = IdOf(FileName() + "-shm");
}

bool Db::RemoveOwnSidecars() {
  // While this connection is open, its -wal and -shm stay at the path: only
  // the last connection to close deletes them, and a connection to a file
  // that has moved leaves them alone. So a -wal or -shm that is still the
  // one noted is the old file's, never one the file at the path now made.
  // (Whatever opened the new file before this runs has already paired it
  // with them; that damage cannot be undone here, only stopped from spreading.)
  bool removed = false;
  for (auto [name, noted] : {std::pair{FileName() + "-wal", wal_}, std::pair{FileName() + "-shm", shm_}}) {
    FileId now = IdOf(name);
    if (noted.present && now.present && now.dev == noted.dev && now.ino == noted.ino &&
        ::unlink(name.c_str()) == 0)
      removed = true;
  }
  return removed;
}

int Db::Check(int rc, const char* what) const {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return rc;
  throw StoreError(std::string(what) + ": " + sqlite3_errmsg(db_), rc, IsBusy(rc));
}

void Db::Exec(const char* sql) { Check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), sql); }

std::int64_t Db::QueryInt(const char* sql) {
  Stmt s(*this, sql);
  if (!s.Step()) throw StoreError(std::string(sql) + ": no row", SQLITE_ERROR, false);
  return s.Int(0);
}

std::string Db::QueryText(const char* sql) {
  Stmt s(*this, sql);
  if (!s.Step()) throw StoreError(std::string(sql) + ": no row", SQLITE_ERROR, false);
  return s.Bytes(0);
}

std::int64_t Db::Changes() const { return sqlite3_changes64(db_); }

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

void Db::SetBusyTimeout(int ms) {
  busy_timeout_ = std::chrono::milliseconds(ms);
  // 0 or less: no waiting at all, as sqlite3_busy_timeout(0).
  Check(ms > 0 ? sqlite3_busy_handler(db_, &Db::OnBusy, this) : sqlite3_busy_timeout(db_, 0), "busy_timeout");
}

namespace {
std::atomic<std::uint64_t> busy_waits{0};
}  // namespace

std::uint64_t Db::BusyWaitsForTesting() { return busy_waits.load(); }

int Db::OnBusy(void* self, int count) {
  // SQLite's own handler sleeps 1, 2, 5, 10, ... up to 100 ms between
  // tries, so a writer of another process that waits misses the short gaps
  // between a sweep's batches (WritePacer) and can starve for seconds. One
  // try a millisecond instead: few threads ever wait here (a process's
  // writers take turns before they ask SQLite), and each try is one fcntl.
  Db& db = *static_cast<Db*>(self);
  auto now = std::chrono::steady_clock::now();
  if (count == 0) db.busy_since_ = now;
  if (now - db.busy_since_ >= db.busy_timeout_) return 0;  // SQLITE_BUSY to the caller
  ++busy_waits;
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return 1;
}

void WritePacer::Begin() {
  if (first_) {
    first_ = false;
  } else {
    // As long as the last transaction held the lock, and at least 2 ms: two
    // of the waiting writers' tries (Db::OnBusy).
    auto held = std::max<std::chrono::steady_clock::duration>(end_ - start_, std::chrono::milliseconds(2));
    std::this_thread::sleep_until(end_ + held);
  }
  start_ = std::chrono::steady_clock::now();
}

void WritePacer::End() { end_ = std::chrono::steady_clock::now(); }

Stmt::Stmt(Db& db, const char* sql) : db_(db) {
  db_.Check(sqlite3_prepare_v3(db_.raw(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr), sql);
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::Bind(int index, std::int64_t value) {
  db_.Check(sqlite3_bind_int64(stmt_, index, value), "bind");
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view bytes) {
  if (!IsTextSafe(bytes)) return BindBlob(index, bytes.data(), bytes.size());
  db_.Check(sqlite3_bind_text64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC, SQLITE_UTF8),
            "bind");
  return *this;
}

Stmt& Stmt::BindBlob(int index, const void* data, std::size_t size) {
  // A zero-length blob must not be bound as NULL (data may be null when empty).
  db_.Check(sqlite3_bind_blob64(stmt_, index, size ? data : "", size, SQLITE_STATIC), "bind");
  return *this;
}

bool Stmt::Step() { return db_.Check(sqlite3_step(stmt_), sqlite3_sql(stmt_)) == SQLITE_ROW; }

void Stmt::Run() {
  Scope scope(*this);
  Step();
}

std::int64_t Stmt::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Stmt::Bytes(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

bool Stmt::Null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

int Stmt::ParamCount() const { return sqlite3_bind_parameter_count(stmt_); }

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Transaction::Transaction(Db& db) : db_(db) { db_.Exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::Commit() {
  // Checked last, just before COMMIT. In WAL mode SQLite goes on committing
  // into a file that is no longer at its path (deleted, or replaced by a
  // restored backup or by a file another sessiond created): the change would
  // be acknowledged, then lost at the next start, and two sessionds on "one"
  // file would each see only their own sessions.
  if (db_.HasMoved())
    throw StoreError("database file " + db_.path() + " was deleted or replaced", SQLITE_READONLY_DBMOVED,
                     false);
  db_.Exec("COMMIT");
  done_ = true;
}

}  // namespace sessiond
