#include "store/open.h"

#include "log/redact.h"
#include "store/postgres/pg_admin.h"
#include "store/postgres/pg_backend.h"
#include "store/postgres/pg_conn.h"
#include "store/session_store.h"
#include "store/sqlite/sqlite_admin.h"
#include "store/sqlite/sqlite_backend.h"

namespace sessiond {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

bool IsPostgresUri(std::string_view db) {
  return StartsWith(db, "postgresql://") || StartsWith(db, "postgres://");
}

std::string PrintableDb(std::string_view db) { return Redact(db); }

namespace {

// The server's clock, and its own synchronous_commit; the process's
// connections to that database.
PgOptions PgOptionsOf(const StoreOptions& options) {
  PgOptions po;
  po.uri = options.db;
  po.timeouts = options.timeouts;
  po.timeout_ms = options.busy_timeout_ms;
  po.pool = SharedPgPool(po, options.db_connections, "the database");
  return po;
}

}  // namespace

std::unique_ptr<SessionStore> OpenStore(const StoreOptions& options) {
  if (IsPostgresUri(options.db))
    return std::make_unique<PolicyStore>(std::make_unique<PgBackend>(PgOptionsOf(options)), options.timeouts,
                                         options.limits);
  return std::make_unique<PolicyStore>(std::make_unique<SqliteBackend>(options), options.timeouts, options.limits);
}

void CheckStore(const StoreOptions& options) {
  if (IsPostgresUri(options.db)) {
    PgBackend(PgOptionsOf(options)).Connect();
    return;
  }
  OpenStore(options);
}

DbConnectionLimits ReadDbConnectionLimits(const StoreOptions& options) {
  pg::Conn c({options.db, options.busy_timeout_ms});
  c.Send(
      "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int, "
      "(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user), "
      "(SELECT datconnlimit FROM pg_database WHERE datname = current_database())");
  pg::Result r = c.Sync().back();
  DbConnectionLimits l;
  l.server = static_cast<int>(r.int64(0, 0));
  l.role = r.null(0, 1) ? -1 : static_cast<int>(r.int64(0, 1));
  l.database = r.null(0, 2) ? -1 : static_cast<int>(r.int64(0, 2));
  return l;
}

std::unique_ptr<SessionAdmin> OpenAdmin(const StoreOptions& options, bool read_only) {
  if (IsPostgresUri(options.db)) {
    PgAdminOptions po;
    po.uri = options.db;
    po.timeout_ms = options.busy_timeout_ms;
    po.writable = !read_only;
    return std::make_unique<PgAdmin>(po);
  }
  SqliteAdminOptions so;
  so.path = options.db;
  so.busy_timeout_ms = options.busy_timeout_ms;
  so.writable = !read_only;
  return std::make_unique<SqliteAdmin>(so);
}

}  // namespace sessiond
