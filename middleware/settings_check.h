// `sessiond serve --test` (as `php-fpm -t`, `nginx -t`): the checks serve
// makes at start, without binding the socket or changing any file, and the
// effective settings as text, which the start-up log line shows too.
#pragma once

#include <string>
#include <vector>

#include "middleware/config.h"

namespace CLI {
class App;
}

namespace sessiond {

// One option of `sessiond serve` as it will be used.
struct Setting {
  std::string key;    // the option's long name, as in the config file ("idle-timeout")
  std::string value;  // config-file syntax: "\"unix:/x.sock\"", "20m", "64KiB", "16", "true"
  bool set = false;   // false: no value and no default (--user, --log-file unset)
};

// Every option of `serve` that a config file may hold, in --help order, with
// the value parsed from the command line and the config file, else its
// default. Durations and sizes are written in the largest unit that is exact
// (1200 s as 20m, 65536 bytes as 64KiB). Secrets are masked: passwords as
// Redact (log/redact.h) finds them, and the whole value of an option named
// like a password, secret or token.
std::vector<Setting> EffectiveSettings(const CLI::App& serve);

// As a config file: "[serve]" and one `key = value` line per setting; an
// unset one as a comment. Fed back through --config, it gives the same
// settings.
std::string SettingsFile(const std::vector<Setting>& settings);

// On one line, for the log: `key=value key=value ...`, unset ones left out.
std::string SettingsLine(const std::vector<Setting>& settings);

// What serve checks at start beyond Validate(), done without side effects:
// the listen address (CheckListenAddress), the database (CheckSqliteFile),
// that sessiond can read the pages directory, that the log file can be
// appended to (or created), and that the temp directory can be written.
// Returns one message per problem; appends what serve would do on its own
// (create the database, take fd 0) to `notes`, and what the limits on
// session floods mean (with --max-sessions, the store's live sessions now:
// a warning when it holds as many already).
std::vector<std::string> CheckBeforeServe(const Config& config, std::vector<std::string>& notes);

// serve --test: prints the settings (SettingsFile) on stdout, then on
// stderr the notes, every problem (`problems`, from Validate(), and
// CheckBeforeServe's) and a verdict. Returns the exit status: 0 when there
// is no problem, else 2.
int TestSettings(const CLI::App& serve, const Config& config, std::vector<std::string> problems);

}  // namespace sessiond
