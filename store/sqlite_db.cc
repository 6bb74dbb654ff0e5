#include "store/sqlite_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sessiond {
namespace {

bool IsBusy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
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

Db::Db(const std::string& path) {
  // Create a missing file ourselves so that it, and the -wal/-shm files SQLite
  // makes with the same mode, are readable by the owner only. Only when it is
  // missing: closing any descriptor of a file drops every POSIX lock this
  // process holds on it, including those of other live SQLite connections.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      throw StoreError("cannot create " + path + ": " + std::strerror(errno), SQLITE_CANTOPEN, false);
    if (fd >= 0) ::close(fd);
  }
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("cannot open " + path + ": " + msg, rc, IsBusy(rc));
  }
  sqlite3_extended_result_codes(db_, 1);
}

Db::Db(const std::string& path, Access access) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw StoreError("cannot open " + path + ": " + std::strerror(errno), SQLITE_CANTOPEN, false);
  int flags = (access == Access::ReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("cannot open " + path + ": " + msg, rc, IsBusy(rc));
  }
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() { sqlite3_close_v2(db_); }

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

std::int64_t Db::Changes() const { return sqlite3_changes64(db_); }

void Db::SetBusyTimeout(int ms) { Check(sqlite3_busy_timeout(db_, ms), "busy_timeout"); }

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

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Transaction::Transaction(Db& db) : db_(db) { db_.Exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::Commit() {
  db_.Exec("COMMIT");
  done_ = true;
}

}  // namespace sessiond
