// Opening a store by what the operator wrote in --db: a file path (SQLite) or
// a libpq connection URI (PostgreSQL). The one place that knows both engines.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/admin.h"
#include "store/backend.h"
#include "store/store.h"

namespace sessiond {

struct StoreOptions {
  // A file path (SQLite; created 0600 if missing), or a libpq URI starting
  // with postgresql:// or postgres:// (PostgreSQL; libpq's own settings,
  // passwords from ~/.pgpass, passfile= or PGPASSWORD).
  std::string db = "sessions.db";
  StoreTimeouts timeouts;
  // SQLite: how long to wait for another writer. PostgreSQL: the bound on
  // connecting, on waiting for a lock, and on each statement. Past it:
  // StoreError, busy (HTTP 503).
  int busy_timeout_ms = 5000;
  // SQLite's PRAGMA synchronous: FULL (default), NORMAL, EXTRA, OFF.
  // PostgreSQL keeps the server's synchronous_commit.
  std::string synchronous = "FULL";
  // PostgreSQL: connections of this process to the database, shared by its
  // workers and its collector (pg_pool.h); each borrows one per store call.
  std::size_t db_connections = 8;
  SessionLimits limits;
  // The store serves the process's own upkeep (the collector), not
  // requests: PostgreSQL's outage line counts only requests it refused.
  bool background = false;
};

// Whether `db` names a PostgreSQL database rather than a file.
bool IsPostgresUri(std::string_view db);

// Why `db` cannot be a --db, or empty when it can. A libpq keyword=value
// string ("host=db dbname=s password=...") is refused: taken as a file name
// it would become a SQLite file whose name holds the password, and the farm
// would silently stop sharing sessions. The message never quotes `db`.
std::string DbSettingProblem(std::string_view db);

// `db` as it may appear in a log line or an error message: its password
// masked (Redact, log/redact.h: user:********@, password=********).
std::string PrintableDb(std::string_view db);

// The session policy over the backend `options.db` names; one per thread.
// Opens (and on first use creates or migrates) the schema. Throws StoreError.
std::unique_ptr<SessionStore> OpenStore(const StoreOptions& options);

// What serve does as it starts, before it listens. SQLite: opens the file
// (and its schema); a StoreError is fatal. PostgreSQL: connects one of the
// process's connections and checks the schema. Throws StoreError: busy when
// the database is out of reach (the store has logged it, and requests get
// 503 until it is back: serve starts anyway); not busy for a settings
// problem (a malformed URI, authentication refused, no such role or
// database, a schema that needs a newer sessiond).
void CheckStore(const StoreOptions& options);

// How many connections a PostgreSQL server takes from sessiond's role (for
// serve --test): -1 where there is no limit of that kind.
struct DbConnectionLimits {
  int server = -1;    // max_connections less superuser_reserved_connections
  int role = -1;      // the role's CONNECTION LIMIT
  int database = -1;  // the database's CONNECTION LIMIT
};
// Connects once. Throws StoreError as CheckStore, SchemaError for a schema
// that needs a newer sessiond (nothing is migrated).
DbConnectionLimits ReadDbConnectionLimits(const StoreOptions& options);

// What `sessiond serve --test` checks of a SQLite file, without changing it
// (no file created, no schema migrated, no row written; in
// store/sqlite/sqlite_check.cc): whether `serve` could use the database at
// options.db: a missing file whose directory lets serve create it; or an
// existing SQLite file this user can read and write, in a directory where
// SQLite can keep its -wal and -shm files, of the schema version this
// sessiond supports or older, whose write lock can be taken within the busy
// timeout. Appends one message per problem to `problems`, and what serve
// would do to a good file (create it, migrate it) to `notes`. Never throws.
void CheckSqliteFile(const StoreOptions& options, std::vector<std::string>& problems,
                     std::vector<std::string>& notes);

// The same store for the operator's commands; `read_only` for those that only look.
std::unique_ptr<SessionAdmin> OpenAdmin(const StoreOptions& options, bool read_only);

}  // namespace sessiond
