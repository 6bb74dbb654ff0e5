// The one wrapper around SQLite's C API: a connection, prepared statements and
// transactions, each released by its destructor. Every SQLite error becomes a
// StoreError that keeps the result code. <sqlite3.h> stays in sqlite_db.cc.
//
// Thread-safety: a Db and its Stmts belong to one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sessiond {

class Db {
 public:
  // Opens the database file at `path`; when `create`, a missing file is first
  // created with mode 0600, otherwise a missing file is a StoreError.
  explicit Db(const std::string& path, bool create = true);
  // Opens the existing file at `path`, never creating it (the admin commands).
  // A ReadOnly connection cannot change the database (SQLITE_READONLY), though
  // in WAL mode SQLite may create the -wal and -shm files beside it.
  enum class Access { ReadOnly, ReadWrite };
  Db(const std::string& path, Access access);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows.
  void Exec(const char* sql);
  // Runs a statement whose first column of its first row is an integer.
  std::int64_t QueryInt(const char* sql);
  // Runs a statement whose first column of its first row is text.
  std::string QueryText(const char* sql);
  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t Changes() const;
  // How long a statement waits for a lock another connection holds before
  // it fails with SQLITE_BUSY (StoreError, busy). It tries again every
  // millisecond meanwhile (SQLite's own handler backs off to 100 ms).
  void SetBusyTimeout(int ms);
  // Tests: how many times connections of this process waited for a lock.
  static std::uint64_t BusyWaitsForTesting();
  // Whether a transaction is open (SQLite ends one by itself after some errors).
  bool InTransaction() const;

  // Throws StoreError unless writes can succeed: the file was opened
  // read-only (its permissions, a read-only mount), or its directory is not
  // writable (SQLite creates the -wal and -shm files there).
  void CheckWritable() const;

  // True when the file at the path is no longer the one this connection has
  // open: deleted, renamed away, or replaced by another file.
  bool HasMoved();
  // True when a file exists at the path, whether or not it is the one open.
  bool FileExists() const;

  // Remembers which -wal and -shm files this connection uses. Call once the
  // WAL is open (after the first transaction).
  void NoteSidecars();
  // After the file has moved: unlinks the -wal and -shm at the path if they
  // are still the very files NoteSidecars() saw. They belong to the file
  // that was at the path before, and SQLite would pair them with the one
  // there now. Returns true if it removed either.
  bool RemoveOwnSidecars();

  const std::string& path() const { return path_; }
  sqlite3* raw() const { return db_; }
  // Throws StoreError for any code other than OK, ROW and DONE; returns `rc`.
  int Check(int rc, const char* what) const;

 private:
  struct FileId {
    bool present = false;
    std::uint64_t dev = 0, ino = 0;
  };
  static FileId IdOf(const std::string& file);
  // The file SQLite opened: `path` with symbolic links resolved. Its -wal
  // and -shm are named after it.
  std::string FileName() const;

  void Open(int flags);  // sqlite3_open_v2 on path_; StoreError on failure
  static int OnBusy(void* self, int count);  // the busy handler SetBusyTimeout installs

  std::string path_;
  sqlite3* db_ = nullptr;
  FileId wal_, shm_;  // as NoteSidecars() saw them
  std::chrono::milliseconds busy_timeout_{0};
  std::chrono::steady_clock::time_point busy_since_;  // when the current wait for a lock began
};

// A prepared statement, prepared once and reused. Bind, step, read columns;
// Reset() (or a Stmt::Scope) ends each use so no read transaction lingers.
class Stmt {
 public:
  Stmt(Db& db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int index, std::int64_t value);
  // Binds bytes as TEXT when they are valid UTF-8 without NUL (readable in the
  // sqlite3 shell), as a BLOB otherwise. Reading back gives the same bytes.
  Stmt& Bind(int index, std::string_view bytes);
  Stmt& BindBlob(int index, const void* data, std::size_t size);

  // Advances to the next row: true if there is one, false when done.
  bool Step();
  // Step() for a statement that returns no rows.
  void Run();
  std::int64_t Int(int column) const;
  std::string Bytes(int column) const;
  bool Null(int column) const;
  // The largest parameter number the statement names (?N); binding a larger
  // one is an error.
  int ParamCount() const;
  void Reset();

  // Resets the statement when the scope ends, whatever happened in it.
  class Scope {
   public:
    explicit Scope(Stmt& s) : s_(s) {}
    ~Scope() { s_.Reset(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Stmt& s_;
  };

 private:
  Db& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Paces a series of write transactions that would otherwise follow each
// other back to back (a sweep's batches, a big rm): Begin() before each
// waits, after the first, as long as the last one held the write lock (from
// Begin to End) and at least 2 ms. Writers of other processes waiting for
// the lock (Db::OnBusy) get it in that gap, so the series holds it at most
// about half the time.
class WritePacer {
 public:
  void Begin();
  void End();

 private:
  bool first_ = true;
  std::chrono::steady_clock::time_point start_, end_;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back by the destructor unless committed.
// IMMEDIATE takes the write lock up front, so a transaction that reads and then
// writes can never fail half-way with SQLITE_BUSY (a deferred one can, when
// another connection wrote in between; the busy handler cannot help there).
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // Throws StoreError "database file X was deleted or replaced" (not busy),
  // and rolls back, when the file has moved (Db::HasMoved).
  void Commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace sessiond
