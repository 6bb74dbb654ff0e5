// SessionAdmin on the PostgreSQL store that PgBackend serves from, safe to
// use while sessionds run on it: every read is one statement (one snapshot),
// deletes go in short transactions of a batch each, and garbage collection
// skips the rows a request holds, as the servers' own collectors do.
#pragma once

#include <functional>
#include <string>

#include "store/sql_admin.h"

namespace sessiond {

struct PgAdminOptions {
  std::string uri;
  int timeout_ms = 5000;  // as PgOptions::timeout_ms
  // false: every transaction is read-only (the server refuses writes), and
  // Remove, RemoveWhere and CollectGarbage throw StoreError.
  bool writable = false;
  // `now` is the database server's clock, as the servers' (PgOptions); the
  // `now` the commands pass is ignored. False: theirs is used (tests).
  bool server_clock = true;
  // Test seam: RemoveWhere calls it after each scan for the matching
  // sessions, before deleting what that scan found.
  std::function<void()> after_scan_for_testing;
};

// The commands' logic is SqlAdmin's; this file gives it PostgreSQL's
// dialect and mechanics. Stats: file_bytes is the tables' and their indexes'
// size on the server (pg_total_relation_size); free_bytes and wal_bytes 0.
// Check: the schema version, items without a session, malformed digests
// (the server keeps its pages consistent). Backup always throws StoreError:
// pg_dump makes a PostgreSQL store's backups.
class PgAdmin final : public SqlAdmin {
 public:
  // Connects. Throws StoreError when it cannot, when the database holds no
  // sessiond schema (sessiond serve creates it), or one that needs a newer
  // sessiond (RefuseUnusableSchema). An older one is used as it is, never
  // migrated; one a newer sessiond expanded, too.
  explicit PgAdmin(const PgAdminOptions& options);
};

}  // namespace sessiond
