#include "commands/commands.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include "tests/next_schema.h"
#include <filesystem>
#include <fstream>
#include <sstream>

#include "store/admin.h"
#include "store/open.h"
#include "store/sqlite/sqlite_backend.h"

using namespace sessiond;

namespace {

constexpr std::int64_t T0 = 1'800'000'000;

struct Result {
  int status;
  std::string out, err;
};

// A program shaped like sessiond's main: a serve command with --db and
// --busy-timeout, a --config file for the whole program, and the commands.
Result Run(std::vector<std::string> args, std::int64_t now = T0 + 10) {
  CLI::App app;
  app.require_subcommand(1);
  std::string db;
  double busy = 5;
  CLI::App* serve = app.add_subcommand("serve");
  app.set_config("--config");
  app.allow_config_extras(false);
  serve->fallthrough();
  serve->add_option("--db", db);
  serve->add_option("--busy-timeout", busy);
  AdminCommands commands(app);
  args.insert(args.begin(), "sessiond");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return {2, "", e.what()};
  }
  REQUIRE(commands.chosen());
  std::ostringstream out, err;
  int status = commands.Run(out, err, now);
  return {status, out.str(), err.str()};
}

struct Fixture {
  std::string dir, db;
  std::string ann, bob;
  Fixture() {
    char d[] = "/tmp/sessiond-commands-test.XXXXXX";
    REQUIRE(mkdtemp(d));
    dir = d;
    db = dir + "/sessions.db";
    StoreOptions o;
    o.db = db;
    auto store = OpenStore(o);
    ChangeSet cs;
    cs.changes.push_back({Change::Kind::Set, "UserName", "ann", {}});
    ann = store->Commit(std::nullopt, cs, T0).id;
    cs.changes[0].value = "bob";
    bob = store->Commit(std::nullopt, cs, T0 + 1).id;
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("commands: data on stdout, exit 0", "[commands]") {
  Fixture f;
  Result r = Run({"list", "--db", f.db});
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("TAG "));
  CHECK_THAT(r.out, Catch::Contains(TagOf(DigestOf(f.ann)) + "  2027-01-15T08:00:00Z"));
  r = Run({"list", "--db", f.db, "--json", "--where", "UserName=bob"});
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("[{\"tag\": \"" + TagOf(DigestOf(f.bob)) + "\""));
  r = Run({"show", "--db", f.db, "--", f.ann});
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("\nUserName = \"ann\"\n"));
  r = Run({"stats", "--db", f.db, "--json"});
  CHECK_THAT(r.out, Catch::Contains("\"live\": 2, \"expired\": 0, \"items\": 2"));
  CHECK(Run({"check", "--db", f.db}).out == "ok\n");
}

TEST_CASE("commands: 1 for not found, 2 for usage", "[commands]") {
  Fixture f;
  CHECK(Run({"show", "--db", f.db, HexOf(DigestOf(NewSessionId())).substr(0, 12)}).status == 1);
  CHECK(Run({"show", "--db", f.db, "--", NewSessionId()}).status == 1);
  Result r = Run({"show", "--db", f.db, "xyz!"});
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Catch::Contains("neither a session id"));
  CHECK(Run({"show", "--db", f.db, "012"}).status == 2);
  CHECK(Run({"list"}).status == 2);                                         // no database
  CHECK(Run({"list", "--db", "postgresql://127.0.0.1:1/sessions"}).status == 1);  // nobody there
  CHECK(Run({"list", "--db", f.dir + "/missing.db"}).status == 1);
  CHECK_FALSE(std::filesystem::exists(f.dir + "/missing.db"));
  CHECK(Run({"list", "--db", f.db, "--where", "novalue"}).status == 2);
  CHECK(Run({"logout", "--db", f.db}).status == 2);                         // --where is required
  r = Run({"rm", "--db", f.db, "--", f.ann, HexOf(DigestOf(f.ann)).substr(0, 3)});  // a malformed one: nothing removed
  CHECK(r.status == 2);
  CHECK(Run({"show", "--db", f.db, "--", f.ann}).status == 0);
}

TEST_CASE("commands: rm, logout, gc say how many they removed", "[commands]") {
  Fixture f;
  Result r = Run({"rm", "--db", f.db, HexOf(DigestOf(f.ann)).substr(0, 8), HexOf(DigestOf(NewSessionId()))});
  CHECK(r.status == 1);  // one of them was not there
  CHECK(r.out == "removed 1 session\n");
  CHECK_THAT(r.err, Catch::Contains("no session"));
  CHECK(Run({"show", "--db", f.db, "--", f.ann}).status == 1);
  r = Run({"logout", "--db", f.db, "--where", "UserName=bob", "--json"});
  CHECK(r.status == 0);
  CHECK(r.out == "{\"removed\": 1}\n");
  r = Run({"gc", "--db", f.db});
  CHECK(r.status == 0);
  CHECK(r.out == "removed 0 expired sessions\n");
}

TEST_CASE("commands: the db comes from the config file, under [serve] or their own section", "[commands]") {
  Fixture f;
  std::string ini = f.dir + "/sessiond.ini";
  std::ofstream(ini) << "[serve]\ndb = \"" << f.db << "\"\nbusy-timeout = 1\n";
  CHECK(Run({"list", "--config", ini}).status == 0);
  CHECK(Run({"stats", "--config", ini, "--db", f.dir + "/other.db"}).status == 1);  // --db wins
  std::ofstream(ini) << "[stats]\ndb = \"" << f.db << "\"\n";
  CHECK(Run({"stats", "--config", ini}).status == 0);
  CHECK(Run({"list", "--config", ini}).status == 2);  // [stats] is not list's
}

TEST_CASE("commands: backup writes a private copy and never replaces a file", "[commands]") {
  Fixture f;
  std::string copy = f.dir + "/copy.db";
  Result r = Run({"backup", "--db", f.db, copy});
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("wrote " + copy));
  struct stat st;
  REQUIRE(::stat(copy.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(Run({"show", "--db", copy, "--", f.bob}).status == 0);
  r = Run({"backup", "--db", f.db, copy});
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Catch::Contains("exists"));
}

TEST_CASE("commands: an id that begins with '-' goes after --", "[commands]") {
  Fixture f;
  std::string id = "-" + std::string(42, 'A');  // well-formed: base64url, and so is '-'
  REQUIRE(IsWellFormedId(id));
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(f.db.c_str(), &db) == SQLITE_OK);
  std::string sql = "INSERT INTO sessions VALUES (X'" + HexOf(DigestOf(id)) + "', " + std::to_string(T0) + ", " +
                    std::to_string(T0) + ", " + std::to_string(T0 + 600) + ")";
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(Run({"show", "--db", f.db, id}).status == 2);  // taken for an option
  CHECK(Run({"show", "--db", f.db, "--", id}).status == 0);
}

// A script runs `migrate --finish --json` and reads what happened from the
// JSON, as from every other command's --json: nothing to do, refused (and
// why, naming the older member), finished.
TEST_CASE("commands: migrate --json, and with --finish too, print JSON", "[commands]") {
  Fixture f;
  Result r = Run({"migrate", "--db", f.db, "--json"});
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::StartsWith("{\"schema_version\": "));
  r = Run({"migrate", "--db", f.db, "--finish", "--json"});
  CHECK(r.status == 0);
  CHECK(r.out == "{\"outcome\": \"nothing\"}\n");
  StoreOptions o;
  o.db = f.db;
  SqliteBackend(o).RecordMember({"old:1", "0.1.0", 0, T0, 0}, T0 + 5);  // a member of this build's schema
  testing::NextSchema next(SqliteSchemaStepsForTesting(), "CREATE TABLE next_notes (note TEXT);");
  const int older = next.older();
  {
    SqliteBackend newer(o);  // the newer build expands the file
  }
  r = Run({"migrate", "--db", f.db, "--finish", "--json"});
  CHECK(r.status == 1);
  CHECK_THAT(r.out, Catch::StartsWith("{\"outcome\": \"refused\", \"why\": \"old:1 (0.1.0, schema " +
                                      std::to_string(older) + "): older sessionds are running"));
  SqliteBackend(o).ForgetMember("old:1");
  r = Run({"migrate", "--db", f.db, "--finish", "--json"});
  CHECK(r.status == 0);
  CHECK(r.out == "{\"outcome\": \"finished\", \"steps\": 1, \"required\": " + std::to_string(older + 1) + "}\n");
}

TEST_CASE("commands: show marks JSON items and gives every item's type in --json", "[commands][types]") {
  Fixture f;
  StoreOptions o;
  o.db = f.db;
  auto store = OpenStore(o);
  ChangeSet cs;
  cs.changes.push_back({Change::Kind::Set, "cart", R"({"apple":1})", {}, ItemType::Json});
  cs.changes.push_back({Change::Kind::Set, "odd", "\"\xe2\x80\xae\"", {}, ItemType::Json});  // a bidi override
  cs.changes.push_back({Change::Kind::Set, "name", "3", {}});
  std::string id = store->Commit(std::nullopt, cs, T0).id;
  Result r = Run({"show", "--db", f.db, "--", id});
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("\ncart (json) = {\"apple\":1}\n"));
  CHECK_THAT(r.out, Catch::Contains("\nname = \"3\"\n"));
  CHECK_THAT(r.out, Catch::Contains("\nodd (json) = \"\\\"\\u{202e}\\\"\"\n"));  // escaped, as a string is
  r = Run({"show", "--db", f.db, "--json", "--", id});
  CHECK_THAT(r.out, Catch::Contains(R"({"key": "cart", "value": "{\"apple\":1}", "type": "json"})"));
  CHECK_THAT(r.out, Catch::Contains(R"({"key": "name", "value": "3", "type": "string"})"));
}
