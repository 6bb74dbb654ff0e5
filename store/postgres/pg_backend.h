// StoreBackend on PostgreSQL: the sessions of a farm of machines in one
// database. The schema (pg_backend.cc, and the README's "Farm of machines")
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
};

// The schema version this build writes (table sessiond_schema).
inline constexpr int kPgSchemaVersion = 1;

// The server's clock in SQL, in whole seconds as time(2) counts them: the
// transaction's start, so every statement of a unit of work sees one `now`.
inline constexpr const char* kPgServerNow = "floor(extract(epoch from transaction_timestamp()))::bigint";

// Creates the schema in an empty database, migrates an older one, and
// refuses (StoreError, not busy) one newer than kPgSchemaVersion. Several
// processes starting at once serialise on an advisory lock: one creates, the
// others find it made. Returns the version found before.
int MigratePgSchema(pg::Conn& conn);

// Thread-safety: one instance per thread (one connection each), as
// StoreBackend says. Connects in the constructor (which migrates, and throws
// StoreError when it cannot), and after a failure again on the next call.
class PgBackend final : public StoreBackend {
 public:
  explicit PgBackend(const PgOptions& options);
  ~PgBackend() override;

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

  // Round trips to the server so far (not counting connecting).
  std::int64_t round_trips() const;
  // The server process of this instance's connection; 0 when not connected.
  int backend_pid() const;

 private:
  class Writer;
  struct Statements;
  std::vector<pg::Result> Transaction(const std::function<void()>& send);
  PgOptions opts_;
  std::unique_ptr<Statements> sql_;
  std::unique_ptr<pg::Conn> conn_;
};

}  // namespace sessiond
