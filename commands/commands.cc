#include "commands/commands.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "commands/output.h"
#include "log/redact.h"
#include "store/open.h"

namespace sessiond {
namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;  // not found, check failed, or the store failed
constexpr int kUsage = 2;

enum class Command { List, Show, Rm, Logout, Gc, Stats, Check, Backup, Migrate };

// What the command line asked for; each command reads the fields it took.
struct Options {
  std::string db;
  double busy_timeout = 5;  // seconds
  bool json = false;
  std::vector<std::string> where;     // KEY=VALUE
  bool expired = false, all = false;  // list
  std::size_t limit = 0;              // list; 0: no limit
  std::vector<std::string> sessions;  // show, rm: ids or digest prefixes
  std::size_t batch = 500;            // gc
  bool quick = false;                 // check
  bool finish = false;                // migrate
  std::string backup_path;
};

CLI::AsNumberWithUnit FractionalSeconds() {
  return CLI::AsNumberWithUnit(
      std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
      CLI::AsNumberWithUnit::CASE_SENSITIVE, "ms|s|m|h|d");
}

std::vector<ItemMatch> Matches(const std::vector<std::string>& where) {
  std::vector<ItemMatch> out;
  for (const std::string& kv : where) {
    std::size_t eq = kv.find('=');
    out.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
  }
  return out;
}

std::string Line(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Line(const char* format, ...) {
  char buf[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

std::string Plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + ' ' + (n == 1 ? one : many);
}

// The members every session shows in JSON, without braces.
std::string JsonSummary(const SessionSummary& s, std::int64_t now) {
  return "\"tag\": \"" + TagOf(s.digest) + "\", \"digest\": \"" + HexOf(s.digest) + "\", \"created\": \"" +
         IsoTime(s.created) + "\", \"accessed\": \"" + IsoTime(s.accessed) + "\", \"expires\": \"" +
         IsoTime(s.expires) + "\", \"expired\": " + (s.ExpiredAt(now) ? "true" : "false") +
         ", \"item_count\": " + std::to_string(s.items) + ", \"bytes\": " + std::to_string(s.bytes);
}

void PrintList(std::ostream& out, const std::vector<SessionSummary>& rows, bool json, std::int64_t now) {
  if (json) {
    out << '[';
    for (std::size_t i = 0; i < rows.size(); ++i) out << (i ? ",\n " : "") << '{' << JsonSummary(rows[i], now) << '}';
    out << "]\n";
    return;
  }
  out << Line("%-8s  %-20s  %-20s  %-20s  %5s  %8s\n", "TAG", "CREATED", "LAST ACCESS", "EXPIRES", "ITEMS", "BYTES");
  for (const SessionSummary& s : rows)
    out << Line("%-8s  %-20s  %-20s  %-20s  %5zu  %8zu\n", TagOf(s.digest).c_str(), IsoTime(s.created).c_str(),
                IsoTime(s.accessed).c_str(), IsoTime(s.expires).c_str(), s.items, s.bytes);
}

void PrintSession(std::ostream& out, const SessionDetail& d, bool json, std::int64_t now) {
  const SessionSummary& s = d.summary;
  if (json) {
    out << '{' << JsonSummary(s, now) << ", \"items\": [";
    bool first = true;
    for (const auto& [k, v] : d.items) {
      out << (first ? "" : ", ") << '{' << JsonBytes("key", k) << ", " << JsonBytes("value", v) << ", \"type\": \""
          << TypeName(d.json.count(k) ? ItemType::Json : ItemType::String) << "\"}";
      first = false;
    }
    out << "]}\n";
    return;
  }
  out << "session   " << HexOf(s.digest) << '\n'
      << "created   " << IsoTime(s.created) << '\n'
      << "accessed  " << IsoTime(s.accessed) << '\n'
      << "expires   " << IsoTime(s.expires) << (s.ExpiredAt(now) ? " (expired)" : "") << '\n'
      << "items     " << s.items << ", " << Plural(s.bytes, "byte", "bytes") << '\n';
  if (!d.items.empty()) out << '\n';
  // A JSON item shows its text as it is when that is printable ASCII, else
  // quoted as a string is (no control or hidden character reaches the
  // terminal), marked "(json)".
  for (const auto& [k, v] : d.items) {
    if (!d.json.count(k)) {
      out << KeyText(k) << " = " << Quoted(v) << '\n';
      continue;
    }
    const bool plain = std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    out << KeyText(k) << " (json) = " << (plain ? v : Quoted(v)) << '\n';
  }
}

void PrintRemoved(std::ostream& out, std::size_t n, bool json, const char* what) {
  if (json) out << "{\"removed\": " << n << "}\n";
  else out << "removed " << n << ' ' << what << (n == 1 ? "" : "s") << '\n';
}

// The members as a JSON array.
std::string MembersJson(const std::vector<MemberStatus>& members) {
  std::string out = "[";
  for (std::size_t i = 0; i < members.size(); ++i) {
    const MemberStatus& m = members[i];
    out += std::string(i ? ", " : "") + "{\"member\": " + JsonString(m.member.name) +
           ", \"release\": " + JsonString(m.member.release) + ", \"schema\": " + std::to_string(m.member.schema) +
           ", \"started\": \"" + IsoTime(m.member.started) + "\", \"seen\": \"" + IsoTime(m.member.seen) +
           "\", \"running\": " + (m.running ? "true" : "false") + "}";
  }
  return out + "]";
}

// One line per member: name, release, schema, when it started and was last seen.
void PrintMembers(std::ostream& out, const std::vector<MemberStatus>& members) {
  if (members.empty()) out << "members         none recorded (a sessiond serve records itself as it starts)\n";
  for (std::size_t i = 0; i < members.size(); ++i) {
    const MemberStatus& m = members[i];
    out << (i ? "                " : "members         ") << Escaped(m.member.name) << "  " << Escaped(m.member.release)
        << "  schema " << m.member.schema << "  started " << IsoTime(m.member.started) << "  seen "
        << IsoTime(m.member.seen) << (m.running ? "" : " (not running)") << '\n';
  }
}

void PrintStats(std::ostream& out, const StoreStats& st, bool json) {
  if (json) {
    out << "{\"live\": " << st.live << ", \"expired\": " << st.expired << ", \"items\": " << st.items
        << ", \"bytes\": " << st.bytes << ", \"oldest\": "
        << (st.oldest ? '"' + IsoTime(*st.oldest) + '"' : std::string("null"))
        << ", \"file_bytes\": " << st.file_bytes << ", \"free_bytes\": " << st.free_bytes
        << ", \"wal_bytes\": " << st.wal_bytes << ", \"schema_version\": " << st.schema_version
        << ", \"schema_required\": " << st.schema_required << ", \"members\": " << MembersJson(st.members) << "}\n";
    return;
  }
  out << "sessions        " << st.live << " live, " << st.expired << " expired\n"
      << "items           " << st.items << ", " << Plural(st.bytes, "byte", "bytes") << '\n'
      << "oldest session  " << (st.oldest ? IsoTime(*st.oldest) : std::string("-")) << '\n'
      << "file            " << st.file_bytes << " bytes (" << st.free_bytes << " free), WAL "
      << st.wal_bytes << " bytes\n"
      << "schema version  " << st.schema_version
      << (st.schema_required ? " (sessiond of schema " + std::to_string(st.schema_required) + " or later)" : "")
      << '\n';
  PrintMembers(out, st.members);
}

void PrintUpgrade(std::ostream& out, const UpgradeStatus& up, bool json) {
  if (json) {
    out << "{\"schema_version\": " << up.level.version << ", \"schema_required\": " << up.level.required
        << ", \"known\": " << up.known << ", \"pending\": [";
    for (std::size_t i = 0; i < up.pending.size(); ++i) out << (i ? ", " : "") << up.pending[i];
    out << "], \"members\": " << MembersJson(up.members) << "}\n";
    return;
  }
  out << "schema version  " << up.level.version << " (this sessiond knows " << up.known << "); "
      << (up.level.required ? "needs a sessiond of schema " + std::to_string(up.level.required) + " or later"
                            : std::string("no contract step has run"))
      << '\n';
  if (up.pending.empty())
    out << "contract steps  none pending\n";
  else
    out << "contract steps  " << up.pending.size() << " pending (they need every member at schema "
        << *std::max_element(up.pending.begin(), up.pending.end())
        << " or later): sessiond migrate --finish runs them\n";
  PrintMembers(out, up.members);
}

void PrintCheck(std::ostream& out, const std::vector<std::string>& problems, bool json) {
  if (json) {
    out << "{\"ok\": " << (problems.empty() ? "true" : "false") << ", \"problems\": [";
    for (std::size_t i = 0; i < problems.size(); ++i) out << (i ? ", " : "") << JsonString(problems[i]);
    out << "]}\n";
    return;
  }
  if (problems.empty()) out << "ok\n";
  for (const std::string& p : problems) out << Escaped(p) << '\n';
}

// A command and the options it was given. Each has its own: CLI11 reads a
// config file's section of a command even when another one was chosen.
struct Entry {
  CLI::App* cmd;
  Command command;
  Options o;

  // The store, through the one place that picks its implementation.
  std::unique_ptr<SessionAdmin> Open(bool writable) const {
    StoreOptions so;
    so.db = o.db;
    so.busy_timeout_ms = static_cast<int>(o.busy_timeout * 1000);
    return OpenAdmin(so, !writable);
  }

  int Run(std::ostream& out, std::ostream& err, std::int64_t now);
};

}  // namespace

struct AdminCommands::Impl {
  CLI::App* serve = nullptr;  // whose db and busy-timeout are the fallback
  std::vector<std::unique_ptr<Entry>> commands;
};

AdminCommands::AdminCommands(CLI::App& app) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  for (CLI::App* sub : app.get_subcommands([](CLI::App* s) { return s->get_name() == "serve"; })) m.serve = sub;

  auto add = [&](Command c, const char* name, const char* what) -> Entry& {
    CLI::App* cmd = app.add_subcommand(name, what);
    m.commands.push_back(std::make_unique<Entry>(Entry{cmd, c, {}}));
    Options& o = m.commands.back()->o;
    cmd->fallthrough();  // --config belongs to the whole program, as for serve
    cmd->add_option("--db", o.db, "The SQLite file sessiond serve uses (default: serve's db from --config)");
    cmd->add_option("--busy-timeout", o.busy_timeout,
                    "Wait this long for the server's write lock (default: serve's from --config, or 5s)")
        ->transform(FractionalSeconds())
        ->check(CLI::NonNegativeNumber);
    return *m.commands.back();
  };
  auto json = [](Entry& e, const char* what) { e.cmd->add_flag("--json", e.o.json, what); };
  auto where = [](Entry& e, const char* what) {
    return e.cmd->add_option("--where", e.o.where, what)
        ->type_name("KEY=VALUE")
        ->allow_extra_args(false)
        ->check([](const std::string& kv) {
          std::size_t eq = kv.find('=');
          return eq == std::string::npos || eq == 0 ? std::string("must be KEY=VALUE") : std::string();
        });
  };

  Entry& list = add(Command::List, "list", "List live sessions: tag, times (UTC), item count, bytes");
  where(list, "Only sessions holding this item (repeatable; all must match)");
  list.cmd->add_flag("--expired", list.o.expired, "Expired sessions not yet collected, instead of live ones")
      ->excludes(list.cmd->add_flag("--all", list.o.all, "Live and expired sessions"));
  list.cmd->add_option("--limit", list.o.limit, "At most N sessions, the newest first")->check(CLI::PositiveNumber);
  json(list, "A JSON array of sessions");

  Entry& show = add(Command::Show, "show", "Show one session: times and items");
  show.cmd->add_option("session", show.o.sessions, "Its id (the cookie value) or the first 4+ hex digits of its digest")
      ->required()
      ->expected(1);
  json(show, "A JSON object; values that are not UTF-8 as value_hex");

  Entry& rm = add(Command::Rm, "rm", "Remove sessions (their items go with them)");
  rm.cmd->add_option("sessions", rm.o.sessions, "Ids (cookie values) or the first 4+ hex digits of digests")->required();
  json(rm, "Print {\"removed\": N, \"not_found\": [...]}");

  Entry& logout = add(Command::Logout, "logout", "Remove every session holding an item: log a user out everywhere");
  where(logout, "The item, as in --where UserName=ann (repeatable; all must match)")->required();
  json(logout, "Print {\"removed\": N}");

  Entry& gc = add(Command::Gc, "gc", "Remove expired sessions now, in batches, as the server's sweep does");
  gc.cmd->add_option("--batch", gc.o.batch, "Sessions removed per transaction")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  json(gc, "Print {\"removed\": N}");

  Entry& stats = add(Command::Stats, "stats", "Sessions, items, bytes, file and WAL size, schema version");
  json(stats, "A JSON object");

  Entry& check = add(Command::Check, "check", "Check the file's integrity, schema version and items; exit 1 on a problem");
  check.cmd->add_flag("--quick", check.o.quick, "PRAGMA quick_check instead of integrity_check (skips index contents)");
  json(check, "Print {\"ok\": BOOL, \"problems\": [...]}");

  Entry& migrate = add(Command::Migrate, "migrate",
                       "Rolling upgrades: the schema version, the contract steps pending, the sessionds serving the store");
  migrate.cmd->add_flag("--finish", migrate.o.finish,
                        "Run the contract steps once every running sessiond is of this version; exit 1 while one is older");
  json(migrate, "A JSON object; with --finish {\"outcome\": \"nothing\"|\"finished\"|\"refused\", ...}");

  Entry& backup = add(Command::Backup, "backup", "Write a consistent copy of the store to a new file (mode 0600)");
  backup.cmd->add_option("file", backup.o.backup_path, "The copy; must not exist")->required();
}

AdminCommands::~AdminCommands() = default;

bool AdminCommands::chosen() const {
  for (const auto& e : impl_->commands)
    if (*e->cmd) return true;
  return false;
}

int AdminCommands::Run(std::ostream& out, std::ostream& err, std::int64_t now) {
  Impl& m = *impl_;
  for (const auto& e : m.commands) {
    if (!*e->cmd) continue;
    Options& o = e->o;
    const std::string& name = e->cmd->get_name();
    // Without --db (or busy-timeout) of its own, a command takes serve's:
    // one config file, with db written once under [serve], serves both.
    if (m.serve) {
      CLI::Option* db = m.serve->get_option_no_throw("--db");
      if (o.db.empty() && db && db->count()) o.db = db->as<std::string>();
      CLI::Option* busy = m.serve->get_option_no_throw("--busy-timeout");
      if (!e->cmd->get_option("--busy-timeout")->count() && busy && busy->count()) o.busy_timeout = busy->as<double>();
    }
    if (o.db.empty()) {
      err << "sessiond " << name << ": no database: give --db FILE, or --config FILE with db under [serve] or ["
          << name << "]\n";
      return kUsage;
    }
    try {
      return e->Run(out, err, now);
    } catch (const StoreError& x) {
      err << "sessiond " << name << ": " << Escaped(Redact(x.what()));
      if (x.busy())
        err << (IsPostgresUri(e->o.db) ? " (the database server is unreachable or busy; try again later)"
                                       : " (another connection held the database past --busy-timeout)");
      err << '\n';
      return kFailed;
    } catch (const std::exception& x) {
      err << "sessiond " << name << ": " << Escaped(Redact(x.what())) << '\n';
      return kFailed;
    }
  }
  return kUsage;
}

int Entry::Run(std::ostream& out, std::ostream& err, std::int64_t now) {
  const std::string& name = cmd->get_name();
  auto say = [&](const std::string& message) { err << "sessiond " << name << ": " << message << '\n'; };

  // Names sessions as the operator typed them. A malformed or ambiguous name
  // is a usage error (nothing is done); one that matches nothing is reported
  // and left out of `found`.
  auto resolve = [&](SessionAdmin& admin, std::vector<IdDigest>& found, std::vector<std::string>& missing) {
    for (const std::string& text : o.sessions) {
      SessionRef ref = FindSession(admin, text);
      switch (ref.kind) {
        case SessionRef::Kind::Found: found.push_back(ref.digest); break;
        case SessionRef::Kind::NotFound: missing.push_back(text); break;
        case SessionRef::Kind::Malformed:
          say(Quoted(text) + " is neither a session id (43 characters, as in the cookie) nor a digest prefix (" +
              std::to_string(kMinPrefixDigits) + " to 64 hex digits)");
          return false;
        case SessionRef::Kind::Ambiguous: {
          std::string names;
          std::size_t digits = std::min<std::size_t>(text.size() + 8, 64);
          for (const IdDigest& d : ref.candidates) names += ' ' + HexOf(d).substr(0, digits);
          say(text + " begins the digests of several sessions:" + names + (ref.more ? " ..." : "") +
              " (give more digits)");
          return false;
        }
      }
    }
    return true;
  };

  switch (command) {
    case Command::List: {
      ListQuery q;
      q.which = o.all ? ListQuery::Which::All : o.expired ? ListQuery::Which::Expired : ListQuery::Which::Live;
      q.where = Matches(o.where);
      q.limit = o.limit;
      PrintList(out, Open(false)->List(q, now), o.json, now);
      return kOk;
    }
    case Command::Show: {
      auto admin = Open(false);
      std::vector<IdDigest> found;
      std::vector<std::string> missing;
      if (!resolve(*admin, found, missing)) return kUsage;
      std::optional<SessionDetail> d;
      if (!found.empty()) d = admin->Get(found.front());
      if (!d) {  // not found, or removed since it was found
        say("no session " + o.sessions.front());
        return kFailed;
      }
      PrintSession(out, *d, o.json, now);
      return kOk;
    }
    case Command::Rm: {
      auto admin = Open(true);
      std::vector<IdDigest> found;
      std::vector<std::string> missing;
      if (!resolve(*admin, found, missing)) return kUsage;
      for (const std::string& text : missing) say("no session " + text);
      std::size_t n = admin->Remove(found);
      if (o.json) {
        out << "{\"removed\": " << n << ", \"not_found\": [";
        for (std::size_t i = 0; i < missing.size(); ++i) out << (i ? ", " : "") << JsonString(missing[i]);
        out << "]}\n";
      } else {
        PrintRemoved(out, n, false, "session");
      }
      return missing.empty() ? kOk : kFailed;
    }
    case Command::Logout:
      PrintRemoved(out, Open(true)->RemoveWhere(Matches(o.where)), o.json, "session");
      return kOk;
    case Command::Gc:
      PrintRemoved(out, Open(true)->CollectGarbage(now, o.batch), o.json, "expired session");
      return kOk;
    case Command::Stats:
      PrintStats(out, Open(false)->Stats(now), o.json);
      return kOk;
    case Command::Check: {
      // A file too broken to open is a failed check, said the same way.
      std::vector<std::string> problems;
      try {
        problems = Open(false)->Check(o.quick);
      } catch (const StoreError& e) {
        problems.push_back(e.what());
      }
      PrintCheck(out, problems, o.json);
      return problems.empty() ? kOk : kFailed;
    }
    case Command::Migrate: {
      if (!o.finish) {
        PrintUpgrade(out, Open(false)->Upgrade(now), o.json);
        return kOk;
      }
      FinishResult r = Open(true)->Finish(now);
      switch (r.outcome) {
        case FinishResult::Outcome::Nothing:
          out << (o.json ? "{\"outcome\": \"nothing\"}\n"
                         : "nothing to finish: the store has had every contract step of this sessiond\n");
          return kOk;
        case FinishResult::Outcome::Finished:
          if (o.json)
            out << "{\"outcome\": \"finished\", \"steps\": " << r.steps << ", \"required\": " << r.required << "}\n";
          else
            out << "finished: " << Plural(r.steps, "contract step", "contract steps")
                << " run; the store now needs a sessiond of schema " << r.required << " or later\n";
          return kOk;
        case FinishResult::Outcome::Refused:
          if (o.json) out << "{\"outcome\": \"refused\", \"why\": " << JsonString(r.why) << "}\n";
          say("refused, nothing changed: " + Escaped(r.why));
          return kFailed;
      }
      return kFailed;
    }
    case Command::Backup: {
      Open(false)->Backup(o.backup_path);
      struct stat st {};
      std::int64_t bytes = ::stat(o.backup_path.c_str(), &st) == 0 ? st.st_size : 0;
      out << "wrote " << o.backup_path << " (" << Plural(static_cast<std::size_t>(bytes), "byte", "bytes")
          << ", mode 0600)\n";
      return kOk;
    }
  }
  return kUsage;
}

}  // namespace sessiond
