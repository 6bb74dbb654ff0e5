// The one wrapper around libpq (<libpq-fe.h> stays in pg_conn.cc): a
// connection that connects on first use and again after it broke, named
// statements prepared once per connection, parameters and results in binary,
// and every failure turned into a StoreError.
//
// Commands are pipelined: Send() queues a statement, Sync() sends whatever is
// queued and waits for all of it in one round trip. A unit of work that needs
// no answer until its COMMIT (a new session and its items) costs one round
// trip; the statements a caller does not need an answer from ride along with
// the next one it does.
//
// Bounds: connecting is bounded by connect_timeout (the URI's, or the
// timeout rounded up to whole seconds), each statement by the server's
// statement_timeout and lock_timeout (the timeout), and every wait for the
// server on this side by the timeout plus a margin, so a server that stops
// answering (a cut link, a frozen machine) cannot hold a caller. TCP
// keepalives and tcp_user_timeout notice a dead link between requests.
// A timeout of 0 never turns a bound off: lock_timeout is then 1 ms (a
// lock held by another is not waited for), statement_timeout and
// tcp_user_timeout kMinStatementMs, connect_timeout 1 s.
//
// Errors: a StoreError whose busy() is true when trying again later may
// succeed (the server is unreachable, restarting, shutting down or failing
// over; a lock or statement timeout; a serialization failure or deadlock;
// too many connections). After a failure that leaves the connection unusable
// it is closed, and the next call connects afresh. Messages never contain the
// password, from the URI or PGPASSWORD, nor the connection string.
//
// Thread-safety: one Conn belongs to one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

struct pg_conn;
struct pg_result;

namespace sessiond::pg {

// A value for a statement's parameter. Bytes are bytea, sent in binary;
// integers are bigint. The view must outlive the Send() call only.
class Param {
 public:
  static Param Bytes(std::string_view b) { return Param(b, kBytea); }
  static Param Bytes(const void* data, std::size_t n) {
    return Param(std::string_view(static_cast<const char*>(data), n), kBytea);
  }
  static Param Int(std::int64_t v);
  static Param Text(std::string_view t) { return Param(t, kText); }
  // A bytea[] in its binary form, as EncodeBytesArray() makes it.
  static Param BytesArray(std::string_view encoded) { return Param(encoded, kByteaArray); }

  std::string_view data() const { return type_ == kInt8 ? std::string_view(int_, 8) : data_; }
  unsigned type() const { return type_; }

 private:
  static constexpr unsigned kBytea = 17, kInt8 = 20, kText = 25, kByteaArray = 1001;
  Param(std::string_view d, unsigned t) : data_(d), type_(t) {}
  std::string_view data_;
  char int_[8]{};  // an Int's big-endian bytes
  unsigned type_;
};

// `items` as a one-dimensional bytea[] without NULLs in PostgreSQL's binary
// array format (array_send: dimensions, flags, element type, then each
// element's length and bytes, integers big-endian), for Param::BytesArray.
inline std::string EncodeBytesArray(const std::vector<std::string_view>& items) {
  std::string out;
  auto int32 = [&out](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
  };
  int32(items.empty() ? 0 : 1);  // dimensions (an empty array has none)
  int32(0);                      // no NULLs
  int32(17);                     // bytea
  if (!items.empty()) {
    int32(static_cast<std::uint32_t>(items.size()));
    int32(1);  // lower bound
  }
  for (std::string_view b : items) {
    int32(static_cast<std::uint32_t>(b.size()));
    out.append(b);
  }
  return out;
}

// A statement to prepare under `name` on every connection that runs it.
// Both strings must live as long as the Conn (string literals, or members of
// the object that owns the Conn).
struct Statement {
  const char* name;
  const char* sql;
};

// The rows of one statement, in binary. Columns are read by position.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* r);
  int rows() const;
  bool null(int row, int col) const;
  // A bytea (or text) column's bytes.
  std::string_view bytes(int row, int col) const;
  // A bigint, integer, smallint or boolean column.
  std::int64_t int64(int row, int col) const;
  // Rows an INSERT, UPDATE or DELETE changed.
  std::int64_t affected() const;
  // The command tag's first word: "COMMIT", "ROLLBACK", "SELECT"...
  std::string command() const;

 private:
  std::shared_ptr<pg_result> r_;
};

// A WARNING the server sent (a NoticeResponse).
struct Notice {
  std::string sqlstate;
  std::string message;  // primary message and detail, one line
};

// The least statement_timeout (and tcp_user_timeout) a Conn sets, whatever
// its timeout: a statement needs some time to run at all.
inline constexpr int kMinStatementMs = 1000;

struct ConnOptions {
  std::string uri;        // a libpq URI or keyword=value string
  int timeout_ms = 5000;  // the bound described above
  // For a URI of several hosts: which one (by position) a connection
  // reached last, shared by the connections of a pool; tried first.
  std::shared_ptr<std::atomic<int>> last_host = nullptr;
};

class Conn {
 public:
  // Does not connect: the first Send/Sync/Exec does.
  explicit Conn(ConnOptions options);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Connects now unless connected (replacing a connection found dead, as
  // DropIfDead). Throws StoreError (busy when the server could not be
  // reached or refused for now; not busy for a malformed URI, a failed
  // authentication, a role or database that does not exist).
  void Connect();

  // Queues `s` with `params` (connecting first if needed); preparing it on
  // this connection is queued before it the first time. Its result is
  // returned by the next Sync().
  void Send(const Statement& s, const std::vector<Param>& params);
  // Queues a statement without parameters, unprepared (BEGIN, COMMIT, ROLLBACK).
  void Send(const char* sql);
  // Sends everything queued and waits for it; returns the results of the
  // queued statements in order. On the first statement that failed, reads the
  // rest and throws its StoreError.
  std::vector<Result> Sync();

  // Runs `sql` (one or more statements, no parameters) outside the pipeline,
  // with nothing queued. For schema work.
  void Exec(const char* sql);

  // Discards whatever is queued and rolls back an open transaction, or
  // closes the connection when that fails. Never throws.
  void Abort();

  // WARNINGs received since the last ClearNotices().
  const std::vector<Notice>& notices() const { return notices_; }
  void ClearNotices() { notices_.clear(); }

  // With nothing in flight: closes the connection when the server has
  // spoken since the last call (its FATAL goodbye, or the end of the
  // stream), which leaves it dead; returns whether it did. Never blocks.
  bool DropIfDead();
  // Whether a connection is open (it may still turn out to be dead).
  bool connected() const { return conn_ != nullptr; }
  // Closes the connection; the next call connects again.
  void Close();
  // Round trips to the server (Sync and Exec calls that reached it) since
  // this Conn was made, connecting not counted.
  std::int64_t round_trips() const { return round_trips_; }
  // The server's process id for this connection (pg_terminate_backend);
  // 0 when not connected.
  int backend_pid() const;
  // A message with the password (the URI's, PGPASSWORD) blotted out.
  std::string Redact(std::string message) const;

 private:
  static void OnNotice(void* self, const pg_result* r);
  // Throws a busy StoreError after closing, when the connection broke.
  [[noreturn]] void Broken(const std::string& what);
  void Flush();
  void WaitReadable();
  int WaitMs() const;
  int StatementMs() const;
  int LockMs() const;
  StoreError ErrorOf(const pg_result* r, bool* fatal) const;

  ConnOptions opts_;
  std::vector<std::string> secrets_;
  pg_conn* conn_ = nullptr;
  std::vector<std::string> prepared_;  // statement names prepared on conn_
  // What each queued command is: nullptr for a statement whose result the
  // caller gets, or the name of one being prepared (consumed here).
  std::vector<const char*> queued_;
  std::vector<Notice> notices_;
  std::int64_t round_trips_ = 0;
};

}  // namespace sessiond::pg
