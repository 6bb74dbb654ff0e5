// SessionAdmin on the SQLite file that SqliteBackend serves from, safe to use
// while sessiond runs on it: reads take SQLite's WAL snapshots and never block
// the server; deletes go in short BEGIN IMMEDIATE transactions.
#pragma once

#include <functional>
#include <string>

#include "store/sql_admin.h"

namespace sessiond {

struct SqliteAdminOptions {
  std::string path;            // an existing database file; never created
  int busy_timeout_ms = 5000;  // how long a delete waits for the server's write lock
  // false: opened read-only (SQLITE_OPEN_READONLY); Remove, RemoveWhere and
  // CollectGarbage then throw StoreError.
  bool writable = false;
  // Test seam: RemoveWhere calls it after each scan for the matching
  // sessions, before deleting what that scan found.
  std::function<void()> after_scan_for_testing;
  // Test seam: CollectGarbage calls it in each batch's transaction, after
  // its DELETE and before its COMMIT (the write lock held).
  std::function<void()> during_gc_batch_for_testing;
};

// The commands' logic is SqlAdmin's; this file gives it SQLite's dialect
// and mechanics. Stats: file_bytes is the main file, free_bytes its free
// pages (VACUUM returns them), wal_bytes the -wal file. Check: SQLite's
// integrity_check (quick: quick_check) and the schema's triggers too.
// Backup: VACUUM INTO, a compacted copy in rollback-journal mode (sessiond
// puts it back in WAL mode when it serves from it), synced to disk.
class SqliteAdmin final : public SqlAdmin {
 public:
  // Opens the file. Throws StoreError when it is missing, not a database, not
  // a sessiond store (schema version 0), or one that needs a newer sessiond
  // (RefuseUnusableSchema). An older version is used as it is, never
  // migrated (the queries here work on every version so far); one a newer
  // sessiond expanded, too.
  explicit SqliteAdmin(const SqliteAdminOptions& options);
};

}  // namespace sessiond
