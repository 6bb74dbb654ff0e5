#include "store/postgres/pg_conn.h"

#include "log/redact.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace sessiond::pg {
namespace {

using Clock = std::chrono::steady_clock;

// libpq's messages end in a newline and may hold several lines.
std::string OneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  // A line that begins with a tab continues the one before it.
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\n') {
      out += s[i];
    } else if (i + 1 < s.size() && s[i + 1] == '\t') {
      out += ' ';
      ++i;
    } else {
      out += "; ";
    }
  }
  return out;
}

// A connection refused for who sessiond is or how it asked, which trying
// again does not change: libpq's and the server's messages (in English; a
// server with another lc_messages is taken as unreachable, busy).
bool RefusedForGood(const std::string& what) {
  for (const char* m : {"authentication failed", "no pg_hba.conf entry", "no password supplied",
                        "password is required", "does not exist", "invalid connection option",
                        "invalid sslmode", "invalid target_session_attrs", "invalid integer value",
                        "invalid port number", "could not match"})
    if (what.find(m) != std::string::npos) return true;
  return false;
}

bool StartsWith(const char* s, const char* prefix) {
  return s && std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

Param Param::Int(std::int64_t v) {
  Param p(std::string_view(), kInt8);
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 7; i >= 0; --i, u >>= 8) p.int_[i] = static_cast<char>(u & 0xff);
  return p;
}

Result::Result(pg_result* r) : r_(r, PQclear) {}

int Result::rows() const { return r_ ? PQntuples(r_.get()) : 0; }

bool Result::null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }

std::string_view Result::bytes(int row, int col) const {
  return std::string_view(PQgetvalue(r_.get(), row, col),
                          static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

std::int64_t Result::int64(int row, int col) const {
  std::string_view b = bytes(row, col);
  std::uint64_t u = 0;
  for (char c : b) u = (u << 8) | static_cast<unsigned char>(c);
  // Sign-extend the narrower types (integer, smallint); boolean is 0 or 1.
  if (b.size() < 8 && !b.empty() && (static_cast<unsigned char>(b[0]) & 0x80))
    u |= ~std::uint64_t{0} << (8 * b.size());
  return static_cast<std::int64_t>(u);
}

std::int64_t Result::affected() const {
  const char* n = r_ ? PQcmdTuples(r_.get()) : "";
  return *n ? std::strtoll(n, nullptr, 10) : 0;
}

std::string Result::command() const {
  std::string tag = r_ ? PQcmdStatus(r_.get()) : "";
  return tag.substr(0, tag.find(' '));
}

Conn::Conn(ConnOptions options) : opts_(std::move(options)) {
  secrets_ = PasswordsIn(opts_.uri);
  char* err = nullptr;
  if (PQconninfoOption* parsed = PQconninfoParse(opts_.uri.c_str(), &err)) {
    for (PQconninfoOption* o = parsed; o->keyword; ++o)
      if (std::strcmp(o->keyword, "password") == 0 && o->val && *o->val) secrets_.emplace_back(o->val);
    PQconninfoFree(parsed);
  }
  PQfreemem(err);
  if (const char* env = std::getenv("PGPASSWORD"); env && *env) secrets_.emplace_back(env);
  // Masked in every message and log line of the process from now on.
  for (const std::string& s : secrets_) AddSecret(s);
}

Conn::~Conn() { Close(); }

std::string Conn::Redact(std::string message) const { return sessiond::Redact(message); }

void Conn::Close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  queued_.clear();
}

int Conn::backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }

void Conn::Broken(const std::string& what) {
  std::string detail = conn_ ? OneLine(PQerrorMessage(conn_)) : "";
  Close();
  throw StoreError(Redact("PostgreSQL: " + what + (detail.empty() ? "" : ": " + detail)), 0, true);
}

void Conn::OnNotice(void* self, const pg_result* r) {
  const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (!severity || std::strcmp(severity, "WARNING") != 0) return;  // NOTICE, INFO...: not news
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  std::string text = primary ? primary : "";
  if (detail) text += std::string(" (") + detail + ")";
  static_cast<Conn*>(self)->notices_.push_back({state ? state : "", text});
}

bool Conn::DropIfDead() {
  if (!conn_ || !queued_.empty() || PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
  // Between calls the server has nothing to say. When it has (the FATAL
  // message of a server shutting down or restarting, of
  // pg_terminate_backend, or the end of the stream), the connection is
  // dead: replace it before anything is sent, so a request after the
  // database came back does not fail for the connection it held while it
  // was away. Nothing is in flight, so nothing can be lost.
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (poll(&p, 1, 0) == 0) return false;
  Close();
  return true;
}

void Conn::Connect() {
  DropIfDead();
  if (conn_) return;
  std::vector<std::string> keys{"dbname"}, values{opts_.uri};
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(opts_.uri.c_str(), &err);
  if (!parsed) {
    std::string what = err ? OneLine(err) : "out of memory";
    PQfreemem(err);
    throw StoreError(Redact("PostgreSQL: malformed connection URI: " + what), 0, false);
  }
  auto set = [&](const char* key) {
    for (PQconninfoOption* o = parsed; o->keyword; ++o)
      if (std::strcmp(o->keyword, key) == 0) return o->val != nullptr;
    return false;
  };
  auto list = [&](const char* key) {
    std::vector<std::string> out;
    for (PQconninfoOption* o = parsed; o->keyword; ++o)
      if (std::strcmp(o->keyword, key) == 0 && o->val && *o->val) {
        std::string_view v = o->val;
        for (std::size_t a = 0;;) {
          std::size_t b = v.find(',', a);
          out.emplace_back(v.substr(a, b == std::string_view::npos ? v.npos : b - a));
          if (b == std::string_view::npos) break;
          a = b + 1;
        }
      }
    return out;
  };
  // Several hosts (a primary and its standbys): the one connected to last
  // is tried first, the others after it in their order, so after a failover
  // only the first connection of a pool waits out the dead primary's
  // connect_timeout; the next ones go straight to the new primary.
  const std::vector<std::string> hosts = list("host"), ports = list("port"), addrs = list("hostaddr");
  const bool several = hosts.size() > 1 && (ports.size() <= 1 || ports.size() == hosts.size()) &&
                       (addrs.empty() || addrs.size() == hosts.size());
  const std::size_t first = several && opts_.last_host ? static_cast<std::size_t>(opts_.last_host->load()) : 0;
  if (first > 0 && first < hosts.size()) {
    auto rotated = [&](const std::vector<std::string>& l) {
      std::string out;
      for (std::size_t i = 0; i < l.size(); ++i) out += (i ? "," : "") + l[(first + i) % l.size()];
      return out;
    };
    keys.emplace_back("host"), values.push_back(rotated(hosts));
    if (ports.size() > 1) keys.emplace_back("port"), values.push_back(rotated(ports));
    if (!addrs.empty()) keys.emplace_back("hostaddr"), values.push_back(rotated(addrs));
  }
  // Ours only where the operator's URI (or environment) did not say.
  auto fallback = [&](const char* key, const std::string& value, const char* env = nullptr) {
    if (set(key) || (env && std::getenv(env))) return;
    keys.emplace_back(key);
    values.push_back(value);
  };
  // A timeout of 0 (--busy-timeout 0: wait for nobody) must not reach the
  // server as 0, which there means "no limit": each bound has a floor.
  int secs = std::max(1, (opts_.timeout_ms + 999) / 1000);
  fallback("connect_timeout", std::to_string(secs), "PGCONNECT_TIMEOUT");
  fallback("keepalives", "1");
  fallback("keepalives_idle", std::to_string(secs));
  fallback("keepalives_interval", "1");
  fallback("keepalives_count", "3");
  // Sent data unacknowledged this long: the link is dead (Linux).
  fallback("tcp_user_timeout", std::to_string(std::max(opts_.timeout_ms, kMinStatementMs)));
  fallback("fallback_application_name", "sessiond");
  PQconninfoFree(parsed);

  std::vector<const char*> k, v;
  for (std::size_t i = 0; i < keys.size(); ++i) k.push_back(keys[i].c_str()), v.push_back(values[i].c_str());
  k.push_back(nullptr), v.push_back(nullptr);
  conn_ = PQconnectdbParams(k.data(), v.data(), 1);
  if (!conn_) throw StoreError("PostgreSQL: out of memory", 0, true);
  if (PQstatus(conn_) != CONNECTION_OK) {
    // Unreachable, starting up, shutting down, too many connections: busy,
    // the next call tries again. Refused for who we are (authentication, no
    // such role or database) or a setting libpq rejects: not busy, a
    // settings problem that trying again does not mend (the pool still
    // tries again at the next call, in case the operator mends it).
    std::string what = OneLine(PQerrorMessage(conn_));
    Close();
    throw StoreError(Redact("PostgreSQL: cannot connect: " + what), 0, !RefusedForGood(what));
  }
  if (several && opts_.last_host) {
    const char* h = PQhost(conn_);
    const char* port = PQport(conn_);
    for (std::size_t i = 0; i < hosts.size(); ++i)
      if (h && (hosts[i] == h || (!addrs.empty() && addrs[i] == h)) &&
          (ports.size() <= 1 || (port && ports[i] == port)))
        opts_.last_host->store(static_cast<int>(i));
  }
  // The password libpq used, wherever it found it (a passfile too).
  if (const char* password = PQpass(conn_)) AddSecret(password);
  PQsetNoticeReceiver(conn_, &Conn::OnNotice, this);
  if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1)
    Broken("cannot enter pipeline mode");
  // The server's own bounds, per session (behind a transaction-pooling
  // pgbouncer they must be set on the role instead; docs/farm.md says so).
  // A transaction left open by a frozen client is ended by the server.
  static const Statement setup{
      "sessiond_setup",
      "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false), "
      "set_config('idle_in_transaction_session_timeout', $3, false)"};
  std::int64_t trips = round_trips_;
  Send(setup, {Param::Text(std::to_string(StatementMs())), Param::Text(std::to_string(LockMs())),
               Param::Text(std::to_string(std::max(10000, 4 * opts_.timeout_ms)))});
  Sync();
  round_trips_ = trips;
}

void Conn::Send(const Statement& s, const std::vector<Param>& params) {
  Connect();
  std::vector<unsigned> types;
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Param& p : params) {
    types.push_back(p.type());
    values.push_back(p.data().data() ? p.data().data() : "");
    lengths.push_back(static_cast<int>(p.data().size()));
    formats.push_back(p.type() == 25 ? 0 : 1);
  }
  int n = static_cast<int>(params.size());
  if (std::find(prepared_.begin(), prepared_.end(), s.name) == prepared_.end()) {
    // Counted as prepared now, so a second Send before the Sync does not
    // prepare it twice; Sync forgets it again if the Parse failed.
    if (PQsendPrepare(conn_, s.name, s.sql, n, types.data()) != 1) Broken("cannot send");
    queued_.push_back(s.name);
    prepared_.push_back(s.name);
  }
  if (PQsendQueryPrepared(conn_, s.name, n, values.data(), lengths.data(), formats.data(), 1) != 1)
    Broken("cannot send");
  queued_.push_back(nullptr);
}

void Conn::Send(const char* sql) {
  Connect();
  if (PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 1) != 1)
    Broken("cannot send");
  queued_.push_back(nullptr);
}

int Conn::WaitMs() const {
  // A backstop above the server's own timeouts: a server that answers
  // nothing at all (a cut link, a frozen machine) must not hold us.
  return 2 * StatementMs() + 1000;
}

int Conn::StatementMs() const { return std::max(opts_.timeout_ms, kMinStatementMs); }
int Conn::LockMs() const { return std::max(opts_.timeout_ms, 1); }

void Conn::Flush() {
  auto deadline = Clock::now() + std::chrono::milliseconds(WaitMs());
  for (;;) {
    int f = PQflush(conn_);
    if (f == 0) return;
    if (f < 0) Broken("cannot send");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{PQsocket(conn_), POLLIN | POLLOUT, 0};
    int n = left > 0 ? poll(&p, 1, static_cast<int>(left)) : 0;
    if (n == 0) Broken("the server took no data for " + std::to_string(WaitMs()) + " ms");
    if (n > 0 && (p.revents & POLLIN) && PQconsumeInput(conn_) != 1) Broken("connection lost");
  }
}

void Conn::WaitReadable() {
  auto deadline = Clock::now() + std::chrono::milliseconds(WaitMs());
  while (PQisBusy(conn_)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{PQsocket(conn_), POLLIN, 0};
    int n = left > 0 ? poll(&p, 1, static_cast<int>(left)) : 0;
    if (n == 0) Broken("no answer from the server within " + std::to_string(WaitMs()) + " ms");
    if (n > 0 && PQconsumeInput(conn_) != 1) Broken("connection lost");
  }
}

StoreError Conn::ErrorOf(const pg_result* r, bool* fatal) const {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  std::string what = primary ? primary : OneLine(PQresultErrorMessage(r));
  if (what.empty()) what = OneLine(PQerrorMessage(conn_));
  bool connection = !state || StartsWith(state, "08") || StartsWith(state, "57P") ||
                    PQstatus(conn_) == CONNECTION_BAD;
  // 25006: a read-only transaction, i.e. connected to a standby after a
  // failover; a new connection finds the new primary (target_session_attrs).
  *fatal = connection || StartsWith(state, "25006");
  bool busy = *fatal || StartsWith(state, "53") ||  // too many connections, out of memory or disk
              StartsWith(state, "57014") ||          // statement timeout (or cancelled)
              StartsWith(state, "55P03") ||          // lock timeout
              StartsWith(state, "40001") || StartsWith(state, "40P01");  // serialization, deadlock
  return StoreError(Redact("PostgreSQL: " + what + (state ? " (SQLSTATE " + std::string(state) + ")" : "")),
                    0, busy);
}

std::vector<Result> Conn::Sync() {
  Connect();
  if (PQpipelineSync(conn_) != 1) Broken("cannot send");
  Flush();
  ++round_trips_;
  std::vector<Result> out;
  std::vector<const char*> queued;
  queued.swap(queued_);
  std::optional<StoreError> first;
  bool fatal = false;
  std::size_t i = 0;
  int nulls = 0;
  for (;;) {
    WaitReadable();
    PGresult* r = PQgetResult(conn_);
    if (!r) {
      // One NULL ends each command's results. More than that in a row, or a
      // dead connection: the pipeline will not finish.
      if (PQstatus(conn_) == CONNECTION_BAD || ++nulls > 1) {
        if (first) {
          Close();
          throw *first;
        }
        Broken("connection lost");
      }
      continue;
    }
    nulls = 0;
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    if (status == PGRES_FATAL_ERROR && !first) first = ErrorOf(r, &fatal);
    const char* prepare = i < queued.size() ? queued[i] : nullptr;
    ++i;
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (prepare) {
      if (!ok) prepared_.erase(std::remove(prepared_.begin(), prepared_.end(), std::string(prepare)), prepared_.end());
      PQclear(r);
    } else if (ok) {
      out.emplace_back(r);
    } else {
      PQclear(r);
      out.emplace_back();
    }
  }
  if (first) {
    if (fatal) Close();
    throw *first;
  }
  return out;
}

void Conn::Exec(const char* sql) {
  Connect();
  if (PQexitPipelineMode(conn_) != 1) Broken("cannot leave pipeline mode");
  if (PQsendQuery(conn_, sql) != 1) Broken("cannot send");
  Flush();
  ++round_trips_;
  std::optional<StoreError> first;
  bool fatal = false;
  for (;;) {
    WaitReadable();
    PGresult* r = PQgetResult(conn_);
    if (!r) break;
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && !first) first = ErrorOf(r, &fatal);
    PQclear(r);
  }
  if (PQstatus(conn_) == CONNECTION_BAD) fatal = true;
  if (!fatal && PQenterPipelineMode(conn_) != 1) Broken("cannot enter pipeline mode");
  if (first) {
    if (fatal) Close();
    throw *first;
  }
  if (fatal) Broken("connection lost");
}

void Conn::Abort() {
  if (!conn_) return;
  try {
    // What is queued first (its errors do not matter now), then the
    // ROLLBACK on its own, so an earlier failure cannot abort it.
    if (!queued_.empty()) {
      try {
        Sync();
      } catch (const StoreError&) {
      }
    }
    if (conn_ && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      Send("ROLLBACK");
      Sync();
    }
  } catch (...) {
    Close();
  }
}

}  // namespace sessiond::pg
