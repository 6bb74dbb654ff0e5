// Keeping passwords out of everything sessiond prints: the one masker. Every
// log line passes through it (LogLine), and so do serve --test's output and
// the store's error messages. A leaf like log.h: it knows the spellings of a
// password, not where one comes from.
//
// Thread-safety: every function but HideSecretsInArgv is safe to call from
// any thread (not from a signal handler).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

// What a password is shown as.
inline constexpr std::string_view kMasked = "********";

// `text` with every password shown as ********:
// - the password of a URI's user info, scheme://user:PASSWORD@host;
// - the value given to a key named password (any case; PGPASSWORD too): a
//   URI query parameter (?password=... or &password=..., up to the next & or
//   #), a libpq keyword or an environment assignment (password=..., up to
//   the next space; 'quoted values' whole);
// - every secret registered with AddSecret, wherever it appears.
std::string Redact(std::string_view text);

// The value of a setting as sessiond may print it (serve --test, the start
// line): "********" when the setting's `key` names a secret (password,
// passwd, secret, token), else Redact(value).
std::string RedactSetting(std::string_view key, std::string_view value);

// Makes `secret` one that Redact masks wherever it appears, from now on, for
// the life of the process. Empty: nothing.
void AddSecret(std::string_view secret);

// The passwords `db` spells (a libpq URI or keyword string): the user info's
// and password='s, as written and percent-decoded. Found without libpq,
// which cannot parse a malformed URI, and whose message about one may quote
// it.
std::vector<std::string> PasswordsIn(std::string_view db);

// Registers (AddSecret) what libpq may use as the password for `db` when it
// names PostgreSQL: the passwords it spells and PGPASSWORD. (A password
// from a passfile is known only once libpq has read it: the connection
// registers it then.) Nothing for any other `db` (a SQLite file).
void AddDatabaseSecrets(std::string_view db);

// Rewrites the command line in place (argv[1..], what ps and
// /proc/PID/cmdline show every local user) with each password masked.
// Returns whether there was one. The strings argv points to change: call it
// once the arguments were parsed, from the main thread.
bool HideSecretsInArgv(int argc, char** argv);

}  // namespace sessiond
