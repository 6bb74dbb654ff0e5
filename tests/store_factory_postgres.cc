// The PostgreSQL store for the conformance suite: a schema of its own on the
// test cluster (tests/pg_test_db.h), emptied before every test, on the
// callers' clock. Needs SESSIOND_TEST_PG, as every [postgres] case: ctest
// gives it to the conformance cases too.
#include <memory>

#include "store/postgres/pg_admin.h"
#include "store/postgres/pg_backend.h"
#include "store/session_store.h"
#include "tests/pg_test_db.h"
#include "tests/store_factories.h"

namespace sessiond::testing {
namespace {

test::TempPgSchema& Schema() {
  static test::TempPgSchema schema;  // dropped when the test process ends
  return schema;
}

const RegisterStore kPostgres{StoreFactory{
    "postgres",
    [](const StoreOptions& o) -> std::unique_ptr<SessionStore> {
      PgOptions po;
      po.uri = Schema().uri();
      po.timeout_ms = o.busy_timeout_ms;
      po.server_clock = false;
      auto backend = std::make_unique<PgBackend>(po);
      backend->Connect();  // the schema, as serve makes it at start
      return std::make_unique<PolicyStore>(std::move(backend), o.timeouts, o.limits);
    },
    [](const StoreOptions& o) -> std::unique_ptr<SessionAdmin> {
      PgAdminOptions po;
      po.uri = Schema().uri();
      po.timeout_ms = o.busy_timeout_ms;
      po.writable = true;
      po.server_clock = false;
      return std::make_unique<PgAdmin>(po);
    },
    [] {
      pg::Conn c({Schema().uri(), 5000});
      c.Send("SELECT to_regclass('sessions') IS NOT NULL");
      if (c.Sync().back().int64(0, 0)) c.Exec("TRUNCATE sessions, items, forwards, session_locks");
    },
}};

}  // namespace
}  // namespace sessiond::testing
