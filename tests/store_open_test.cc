#include "store/open.h"

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("--db names PostgreSQL by a postgresql:// or postgres:// URI, anything else is a file", "[store][open]") {
  CHECK(IsPostgresUri("postgresql://db.example/sessions"));
  CHECK(IsPostgresUri("postgres://user@/sessions?host=/run/postgresql"));
  CHECK_FALSE(IsPostgresUri("sessions.db"));
  CHECK_FALSE(IsPostgresUri("/var/lib/sessiond/postgresql://x"));
  CHECK_FALSE(IsPostgresUri("postgresql:/x"));
  CHECK_FALSE(IsPostgresUri("POSTGRESQL://db/x"));  // libpq's prefixes are lowercase
}

TEST_CASE("a database as printed carries no password", "[store][open]") {
  CHECK(PrintableDb("/var/lib/sessiond/sessions.db") == "/var/lib/sessiond/sessions.db");
  CHECK(PrintableDb("postgresql://sessiond:s3cr%40t@db.example:5432/sessions") ==
        "postgresql://sessiond@db.example:5432/sessions");
  CHECK(PrintableDb("postgres://sessiond@db.example/sessions") == "postgres://sessiond@db.example/sessions");
  CHECK(PrintableDb("postgresql://a:b@h/db?sslmode=require&password=x%26y&user=z") ==
        "postgresql://a@h/db?sslmode=require&password=...&user=z");
  CHECK(PrintableDb("postgresql:///sessions?password=secret") == "postgresql:///sessions?password=...");
  CHECK(PrintableDb("postgresql://h/db#frag:x@y") == "postgresql://h/db#frag:x@y");  // no userinfo
  CHECK(PrintableDb("host=db password='se cr\\'et' dbname=s") == "host=db password=... dbname=s");
  CHECK(PrintableDb("password=secret") == "password=...");
  CHECK(PrintableDb("/srv/mypassword=1/sessions.db") == "/srv/mypassword=1/sessions.db");
}

TEST_CASE("without the PostgreSQL store, a PostgreSQL URI is a clear error", "[store][open]") {
  StoreOptions o;
  o.db = "postgresql://sessiond:secret@127.0.0.1/sessions";
  CHECK_THROWS_WITH(OpenStore(o), "this sessiond was built without the PostgreSQL store");
  CHECK_THROWS_WITH(OpenAdmin(o, true), "this sessiond was built without the PostgreSQL store");
}
