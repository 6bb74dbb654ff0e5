// A sessiond one schema version ahead of this build, for the rolling-upgrade
// test (tests/e2e/rolling.sh): this build plus, on both engines, one expand
// step of the kinds a release adds (a table; a column with a default on the
// items every request writes) and one contract step that needs it. Built
// for the tests only, never installed.
#define main SessiondMain
#include "middleware/main.cc"
#undef main

#include "store/postgres/pg_backend.h"
#include "store/sqlite/sqlite_backend.h"

int main(int argc, char** argv) {
  using namespace sessiond;
  SchemaSteps& sqlite = SqliteSchemaStepsForTesting();
  sqlite.expand.push_back(
      "CREATE TABLE sessiond_next_notes (note TEXT);"
      "ALTER TABLE items ADD COLUMN next_flag INTEGER NOT NULL DEFAULT 0;");
  sqlite.contract.push_back({sqlite.known(), "DROP TABLE sessiond_next_notes;"});
  SchemaSteps& pg = PgSchemaStepsForTesting();
  pg.expand.push_back(
      "CREATE TABLE sessiond_next_notes (note text);"
      "ALTER TABLE items ADD COLUMN next_flag integer NOT NULL DEFAULT 0;");
  pg.contract.push_back({pg.known(), "DROP TABLE sessiond_next_notes;"});
  return SessiondMain(argc, argv);
}
