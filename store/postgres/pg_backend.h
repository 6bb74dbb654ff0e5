// StoreBackend on PostgreSQL: the sessions of a farm of machines in one
// database. The schema (pg_backend.cc, and docs/farm.md's "The details")
// is the SQLite store's, in PostgreSQL types: ids as the bytea SHA3-256
// digest, keys and values as bytea (bytes in, bytes out), times as bigint
// unix seconds of the database server's clock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/backend.h"

namespace sessiond {

namespace pg {
class Conn;
class Pool;
class Result;
}

struct PgOptions {
  std::string uri;  // a libpq URI (or keyword=value string)
  StoreTimeouts timeouts;
  // Bounds connecting, each lock wait and each statement (see pg_conn.h).
  int timeout_ms = 5000;
  // Every `now` is the database server's clock (transaction_timestamp(), so
  // the statements of one unit of work agree), so the machines of a farm
  // agree on expiry whatever their own clocks say; the callers' `now` is
  // ignored. False: the callers' `now` is used (tests that control time).
  bool server_clock = true;
  // The connections to borrow from (SharedPgPool); null: a pool of one
  // connection of the instance's own.
  std::shared_ptr<pg::Pool> pool;
  // The process's own upkeep (StoreOptions::background).
  bool background = false;
};

// The expand steps of this build's own schema (sessiond_schema.version
// counts them); PgSchemaSteps().known() is the version this build writes.
inline constexpr int kPgSchemaVersion = 5;
// The version whose step gave items their type column.
inline constexpr int kPgItemTypesSince = 5;

// 'sessiond' in ASCII: the advisory lock sessionds starting at once take
// around creating or migrating the schema (per database), and `sessiond
// migrate --finish` around its contract steps.
inline constexpr std::int64_t kPgSchemaLock = 0x73657373696f6e64;

// This build's schema steps (backend.h), and a test's additions: the
// rolling-upgrade test's second build appends steps before any store opens
// (tests/tools/sessiond_next.cc); nothing else may change them.
const SchemaSteps& PgSchemaSteps();
SchemaSteps& PgSchemaStepsForTesting();
// The database's level (sessiond_schema must exist).
SchemaLevel ReadPgSchemaLevel(pg::Conn& conn);

// The server's clock in SQL, in whole seconds as time(2) counts them: the
// transaction's start, so every statement of a unit of work sees one `now`.
inline constexpr const char* kPgServerNow = "floor(extract(epoch from transaction_timestamp()))::bigint";

// After the sweep's inner SELECT (sql::SweepExpired): the expired rows no
// other transaction holds, so collectors running at once take disjoint
// batches and a request writing a session is never waited for.
inline constexpr const char* kPgSkipLocked = " FOR UPDATE SKIP LOCKED";

// Creates the schema in an empty database, migrates an older one, and
// refuses (StoreError, not busy) one newer than kPgSchemaVersion. Several
// processes starting at once serialise on an advisory lock: one creates, the
// others find it made. Returns the version found before.
int MigratePgSchema(pg::Conn& conn);

// The process-wide pool of `connections` connections to `options.uri`
// (pg_pool.h), whose first connection creates or migrates the schema; the
// same pool for every caller with the same URI and timeout. `name` names the
// database in its log lines (without a password).
std::shared_ptr<pg::Pool> SharedPgPool(const PgOptions& options, std::size_t connections, const std::string& name);

// Thread-safety: one instance per thread, as StoreBackend says. Instances
// borrow a connection of their pool for each call, so they cost the database
// nothing while their thread runs a page. Never connects in the constructor:
// the first call (or Connect) does, and checks the schema once per pool.
class PgBackend final : public StoreBackend {
 public:
  explicit PgBackend(const PgOptions& options);
  ~PgBackend() override;

  // Connects one connection of the pool now (and creates or migrates the
  // schema): serve's check at start. Throws StoreError as the pool's Check.
  void Connect();

  std::optional<Session> Load(const IdDigest& d, std::string_view id, std::int64_t now) override;
  void Write(const std::function<void(StoreWriter&)>& unit) override;
  // In one round trip (a function the schema setup creates); the changes of
  // one session that this process's workers make at once share one
  // transaction, sent by one of them while the others wait.
  std::optional<SessionChangeResult> Change(const SessionChange& change) override;
  // Changes of this process waiting for a transaction of their session's
  // (for tests).
  static std::size_t queued_changes();
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  std::optional<std::int64_t> CountLive(std::int64_t now) override;
  bool Holds(const IdDigest& d) override;
  void RecordMember(const Member& member, std::int64_t now) override;
  void ForgetMember(std::string_view name) override;
  std::optional<Forwarding> Forwarded(const IdDigest& d, std::int64_t now) override;
  // One statement, as CollectGarbage's.
  std::size_t CollectForwards(std::int64_t now, std::size_t batch) override;

  // Round trips to the server by this instance's calls (not counting connecting).
  std::int64_t round_trips() const { return trips_; }
  // The server process of the connection of this instance's last call; 0
  // when that call left it closed.
  int backend_pid() const { return pid_; }

 private:
  class Writer;
  class Borrowed;
  struct Statements;
  std::vector<pg::Result> Transaction(pg::Conn& c, const std::function<void()>& send);
  PgOptions opts_;
  std::unique_ptr<Statements> sql_;
  std::shared_ptr<pg::Pool> pool_;
  std::int64_t trips_ = 0;
  int pid_ = 0;
};

}  // namespace sessiond
