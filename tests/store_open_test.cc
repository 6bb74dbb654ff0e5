#include "store/open.h"
#include "store/session_id.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace sessiond;

TEST_CASE("the db setting names PostgreSQL by a postgresql:// or postgres:// URI, anything else is a file", "[store][open]") {
  CHECK(IsPostgresUri("postgresql://db.example/sessions"));
  CHECK(IsPostgresUri("postgres://user@/sessions?host=/run/postgresql"));
  CHECK_FALSE(IsPostgresUri("sessions.db"));
  CHECK_FALSE(IsPostgresUri("/var/lib/sessiond/postgresql://x"));
  CHECK_FALSE(IsPostgresUri("postgresql:/x"));
  CHECK_FALSE(IsPostgresUri("POSTGRESQL://db/x"));  // libpq's prefixes are lowercase
}

TEST_CASE("a keyword=value connection string is no --db: never a SQLite file named after it", "[store][open]") {
  const std::string dsn = "host=127.0.0.1 port=5432 user=sessiond dbname=s password='Se#cr?t'";
  CHECK_FALSE(DbSettingProblem(dsn).empty());
  CHECK(DbSettingProblem(dsn).find("Se#cr") == std::string::npos);  // never quotes it
  CHECK_FALSE(DbSettingProblem(" dbname = s").empty());
  CHECK(DbSettingProblem("sessions.db").empty());
  CHECK(DbSettingProblem("/srv/host=a/sessions.db").empty());  // a path that holds an '='
  CHECK(DbSettingProblem("postgresql://u@h/db?host=/run/postgresql").empty());
  StoreOptions o;
  o.db = dsn;
  try {
    OpenAdmin(o, true);
    FAIL("a connection string was opened");
  } catch (const StoreError& e) {
    CHECK_FALSE(e.busy());
  }
  CHECK_THROWS_AS(OpenStore(o), StoreError);
  CHECK_THROWS_AS(CheckStore(o), StoreError);
}

// The forms themselves: log_test.cc (Redact).
TEST_CASE("a database as printed carries no password", "[store][open]") {
  CHECK(PrintableDb("/var/lib/sessiond/sessions.db") == "/var/lib/sessiond/sessions.db");
  CHECK(PrintableDb("postgresql://sessiond:s3cr%40t@db.example:5432/sessions") ==
        "postgresql://sessiond:********@db.example:5432/sessions");
  CHECK(PrintableDb("postgres://sessiond@db.example/sessions") == "postgres://sessiond@db.example/sessions");
  CHECK(PrintableDb("postgresql://a:b@h/db?sslmode=require&password=x%26y&user=z") ==
        "postgresql://a:********@h/db?sslmode=require&password=********&user=z");
  CHECK(PrintableDb("host=db password='se cr\\'et' dbname=s") == "host=db password=******** dbname=s");
  CHECK(PrintableDb("/srv/mypassword=1/sessions.db") == "/srv/mypassword=1/sessions.db");
}

TEST_CASE("a PostgreSQL URI opens the PostgreSQL store: nobody there is busy, without the password",
          "[store][open]") {
  StoreOptions o;
  o.db = "postgresql://sessiond:Sekr3tPassw0rd@127.0.0.1:1/sessions";  // port 1: refused
  // OpenStore connects at the first call (serve starts without its database);
  // CheckStore is serve's look at start.
  for (auto open : {std::function<void()>([&] { OpenStore(o)->Load(NewSessionId(), 1); }),
                    std::function<void()>([&] { CheckStore(o); }),
                    std::function<void()>([&] { OpenAdmin(o, true); })}) {
    try {
      open();
      FAIL("connected to nobody");
    } catch (const StoreError& e) {
      CHECK(e.busy());
      CHECK_THAT(e.what(), Catch::Contains("PostgreSQL: cannot connect"));
      CHECK_THAT(e.what(), !Catch::Contains("Sekr3tPassw0rd"));
    }
  }
}
