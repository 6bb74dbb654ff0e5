// serve --test's settings text: units a person writes, secrets masked, and
// a config file that reads back as the same settings.
#include "middleware/settings_check.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

using namespace sessiond;

namespace {

// A `serve` with options of each kind main.cc uses, parsed from `args`.
struct Serve {
  CLI::App app{"test"};
  CLI::App* serve = app.add_subcommand("serve", "");
  std::string listen, db = "", user;
  std::int64_t idle = 1200, max_age = 0;
  double page_timeout = 30;
  std::size_t body = 1024 * 1024, odd = 1000;
  int workers = 16;
  bool secure = false, test = false;
  std::string password;

  explicit Serve(std::vector<std::string> args) {
    serve->add_option("--listen", listen, "");
    serve->add_option("--db", db, "");
    serve->add_option("--user", user, "");
    serve->add_option("--idle-timeout", idle, "")
        ->capture_default_str()
        ->transform(CLI::AsNumberWithUnit(std::map<std::string, std::int64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
                                          CLI::AsNumberWithUnit::CASE_SENSITIVE, "s|m|h|d"));
    serve->add_option("--cookie-max-age", max_age, "")
        ->capture_default_str()
        ->transform(CLI::AsNumberWithUnit(std::map<std::string, std::int64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
                                          CLI::AsNumberWithUnit::CASE_SENSITIVE, "s|m|h|d"));
    serve->add_option("--page-timeout", page_timeout, "")
        ->capture_default_str()
        ->transform(CLI::AsNumberWithUnit(
            std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
            CLI::AsNumberWithUnit::CASE_SENSITIVE, "ms|s|m|h|d"));
    serve->add_option("--max-body-bytes", body, "")->capture_default_str()->transform(CLI::AsSizeValue(false));
    serve->add_option("--odd-bytes", odd, "")->capture_default_str()->transform(CLI::AsSizeValue(false));
    serve->add_option("--workers", workers, "")->capture_default_str();
    serve->add_flag("--cookie-secure", secure, "");
    serve->add_option("--db-password", password, "");
    serve->add_flag("--test", test, "")->configurable(false);
    args.insert(args.begin(), "serve");
    std::reverse(args.begin(), args.end());
    app.parse(args);
  }
  std::map<std::string, Setting> Settings() const {
    std::map<std::string, Setting> out;
    for (const Setting& s : EffectiveSettings(*serve)) out[s.key] = s;
    return out;
  }
};

}  // namespace

TEST_CASE("settings show durations and sizes in the largest exact unit", "[settings]") {
  auto s = Serve({"--idle-timeout", "90m", "--page-timeout", "1500ms", "--max-body-bytes", "3MiB"}).Settings();
  CHECK(s["idle-timeout"].value == "\"90m\"");
  CHECK(s["page-timeout"].value == "\"1500ms\"");
  CHECK(s["max-body-bytes"].value == "\"3MiB\"");
  CHECK(s["odd-bytes"].value == "1000");  // no exact unit: bytes
  CHECK(s["cookie-max-age"].value == "0");
  CHECK(s["workers"].value == "16");
  CHECK(s["cookie-secure"].value == "false");
  CHECK(Serve({"--cookie-secure", "--page-timeout", "2h"}).Settings()["cookie-secure"].value == "true");
  CHECK(Serve({"--page-timeout", "2h"}).Settings()["page-timeout"].value == "\"2h\"");
  CHECK(Serve({"--idle-timeout", "1d"}).Settings()["idle-timeout"].value == "\"24h\"");
}

TEST_CASE("unset options are not settings, --test is none", "[settings]") {
  Serve serve({"--listen", "unix:/run/s.sock"});
  auto s = serve.Settings();
  CHECK(s["listen"].set);
  CHECK(s["listen"].value == "\"unix:/run/s.sock\"");
  CHECK_FALSE(s["user"].set);
  CHECK(s.count("test") == 0);
  CHECK(s.count("help") == 0);
  std::string file = SettingsFile(EffectiveSettings(*serve.serve));
  CHECK(file.rfind("[serve]\n", 0) == 0);
  CHECK(file.find("\nlisten = \"unix:/run/s.sock\"\n") != std::string::npos);
  CHECK(file.find("\n# user is not set\n") != std::string::npos);
  std::string line = SettingsLine(EffectiveSettings(*serve.serve));
  CHECK(line.rfind("listen=\"unix:/run/s.sock\" ", 0) == 0);
  CHECK(line.find("user") == std::string::npos);
}

TEST_CASE("secrets never appear in the settings", "[settings]") {
  auto s = Serve({"--db", "postgresql://app:s3cret@db.example/sessions", "--db-password", "hunter2"}).Settings();
  CHECK(s["db"].value == "\"postgresql://app:********@db.example/sessions\"");
  CHECK(s["db-password"].value == "\"********\"");
  s = Serve({"--db", "host=db.example password='a b' dbname=s"}).Settings();
  CHECK(s["db"].value == "\"host=db.example password=******** dbname=s\"");
  CHECK(Serve({"--db", "/var/lib/sessiond/sessions.db"}).Settings()["db"].value == "\"/var/lib/sessiond/sessions.db\"");
  // The query form, which the start line and serve --test once showed.
  Serve query({"--db", "postgresql://app@db.example/sessions?sslmode=require&password=hunter2&user=app"});
  CHECK(query.Settings()["db"].value == "\"postgresql://app@db.example/sessions?sslmode=require&password=********&user=app\"");
  CHECK(SettingsLine(EffectiveSettings(*query.serve)).find("hunter2") == std::string::npos);
  CHECK(SettingsFile(EffectiveSettings(*query.serve)).find("hunter2") == std::string::npos);
}

TEST_CASE("quotes and backslashes in values are escaped", "[settings]") {
  CHECK(Serve({"--listen", "unix:/tmp/a\"b\\c"}).Settings()["listen"].value == "\"unix:/tmp/a\\\"b\\\\c\"");
}
