#include "store/open.h"

#include "log/redact.h"
#include "store/postgres/pg_admin.h"
#include "store/postgres/pg_backend.h"
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

std::unique_ptr<SessionStore> OpenStore(const StoreOptions& options) {
  if (IsPostgresUri(options.db)) {
    // The server's clock, and its own synchronous_commit.
    PgOptions po;
    po.uri = options.db;
    po.timeouts = options.timeouts;
    po.timeout_ms = options.busy_timeout_ms;
    return std::make_unique<PolicyStore>(std::make_unique<PgBackend>(po), options.timeouts, options.limits);
  }
  return std::make_unique<PolicyStore>(std::make_unique<SqliteBackend>(options), options.timeouts, options.limits);
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
