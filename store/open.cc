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

// Refuses a --db no engine should take, before either opens anything.
void CheckDbSetting(std::string_view db) {
  if (std::string why = DbSettingProblem(db); !why.empty()) throw StoreError(why, 0, false);
}

}  // namespace

std::string DbSettingProblem(std::string_view db) {
  if (IsPostgresUri(db)) return {};
  // The first word, up to an '=': one of libpq's connection keywords.
  std::size_t start = db.find_first_not_of(" \t");
  std::size_t eq = db.find('=');
  if (start == std::string_view::npos || eq == std::string_view::npos || eq < start) return {};
  std::string_view key = db.substr(start, eq - start);
  while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
  for (std::string_view k : {"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service",
                             "sslmode", "options", "connect_timeout", "application_name", "target_session_attrs"})
    if (key == k)
      return "--db takes a SQLite file or a postgresql:// URI, not a keyword=value connection string "
             "(write it as postgresql://USER@HOST:PORT/DBNAME, other keywords after ?)";
  return {};
}

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
  po.timeout_ms = options.busy_timeout_ms;
  po.background = options.background;
  po.pool = SharedPgPool(po, options.db_connections, "the database");
  return po;
}

}  // namespace

std::unique_ptr<SessionStore> OpenStore(const StoreOptions& options) {
  CheckDbSetting(options.db);
  if (IsPostgresUri(options.db))
    return std::make_unique<PolicyStore>(std::make_unique<PgBackend>(PgOptionsOf(options)), options.timeouts,
                                         options.limits);
  return std::make_unique<PolicyStore>(std::make_unique<SqliteBackend>(options), options.timeouts, options.limits);
}

void CheckStore(const StoreOptions& options) {
  CheckDbSetting(options.db);
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
  // A schema finished for a newer sessiond (a rollback too far) is refused
  // here as serve refuses it, read without changing anything.
  c.Send("SELECT to_regclass('sessiond_schema') IS NOT NULL");
  if (c.Sync().back().int64(0, 0)) RefuseUnusableSchema(ReadPgSchemaLevel(c), PgSchemaSteps().known(), "PostgreSQL: ", 0);
  return l;
}

std::unique_ptr<SessionAdmin> OpenAdmin(const StoreOptions& options, bool read_only) {
  CheckDbSetting(options.db);
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
