#include "store/postgres/pg_backend.h"

#include <iterator>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_pool.h"

namespace sessiond {
namespace {

using pg::Param;
using pg::Statement;

// Each entry migrates from version i to i+1. Never edit a shipped entry: add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE sessiond_schema (version integer NOT NULL);
CREATE TABLE sessions (
  id_hash  bytea PRIMARY KEY,   -- SHA3-256 of the id
  created  bigint NOT NULL,     -- unix seconds, the database server's clock
  accessed bigint NOT NULL,     -- last access, refreshed lazily
  expires  bigint NOT NULL      -- least(accessed + idle timeout, created + absolute timeout)
);
CREATE INDEX sessions_by_expiry ON sessions (expires);
CREATE TABLE items (
  id_hash bytea NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE ON UPDATE CASCADE,
  key     bytea NOT NULL,
  value   bytea NOT NULL,
  PRIMARY KEY (id_hash, key)
);
)sql",
};
static_assert(std::size(kMigrations) == kPgSchemaVersion);

// 'sessiond' in ASCII: the advisory lock sessionds starting at once take
// around creating or migrating the schema (per database).
constexpr std::int64_t kSchemaLock = 0x73657373696f6e64;

std::string WithNow(std::string sql, const std::string& now) {
  for (std::size_t pos = 0; (pos = sql.find("{now}", pos)) != std::string::npos; pos += now.size())
    sql.replace(pos, 5, now);
  return sql;
}

}  // namespace

int MigratePgSchema(pg::Conn& conn) {
  static const Statement lock{"sessiond_schema_lock",
                              "SELECT pg_advisory_xact_lock($1), to_regclass('sessiond_schema') IS NOT NULL"};
  try {
    conn.Send("BEGIN");
    conn.Send(lock, {Param::Int(kSchemaLock)});
    bool exists = conn.Sync().back().int64(0, 1) != 0;
    int version = 0;
    if (exists) {
      conn.Send("SELECT coalesce(max(version), 0) FROM sessiond_schema");
      version = static_cast<int>(conn.Sync().back().int64(0, 0));
    }
    if (version > kPgSchemaVersion)
      throw StoreError("PostgreSQL: database schema version " + std::to_string(version) +
                           " is newer than this sessiond supports (" + std::to_string(kPgSchemaVersion) + ")",
                       0, false);
    for (int v = version; v < kPgSchemaVersion; ++v) conn.Exec(kMigrations[v]);
    if (version != kPgSchemaVersion)
      conn.Exec(("DELETE FROM sessiond_schema; INSERT INTO sessiond_schema (version) VALUES (" +
                 std::to_string(kPgSchemaVersion) + ")")
                    .c_str());
    conn.Send("COMMIT");
    conn.Sync();
    return version;
  } catch (...) {
    conn.Abort();
    throw;
  }
}

// The statements, with `now` as a parameter or the server's clock.
struct PgBackend::Statements {
  explicit Statements(bool server_clock)
      // Parameters: $1 the digest, $2 the caller's now (unused on the
      // server's clock), $3 idle, $4 absolute.
      : now(server_clock ? kPgServerNow : "$2"),
        gc_now(server_clock ? kPgServerNow : "$1"),
        load_sql(WithNow("SELECT s.created, s.accessed, i.key, i.value, {now} FROM sessions s "
                         "LEFT JOIN items i ON i.id_hash = s.id_hash "
                         "WHERE s.id_hash = $1 AND s.expires > {now} "
                         "AND s.accessed > {now} - $3 AND s.created > {now} - $4",
                         now)),
        // Both lock the session row (FOR NO KEY UPDATE, as the UPDATE does),
        // so the writes of two requests on one session take turns, as they
        // do on SQLite: the second sees the first's items (limits), or finds
        // the session gone (renamed or deleted) when it gets the lock.
        touch_sql(WithNow("UPDATE sessions SET accessed = {now}, expires = least({now} + $3, created + $4) "
                          "WHERE id_hash = $1 AND expires > {now} AND accessed > {now} - $3 "
                          "AND created > {now} - $4",
                          now)),
        alive_sql(WithNow("SELECT 1 FROM sessions WHERE id_hash = $1 AND expires > {now} "
                          "AND accessed > {now} - $3 AND created > {now} - $4 FOR NO KEY UPDATE",
                          now)),
        insert_sql(WithNow("INSERT INTO sessions (id_hash, created, accessed, expires) "
                           "VALUES ($1, {now}, {now}, {now} + least($3, $4))",
                           now)),
        // The expired rows no other transaction holds: collectors running at
        // once take disjoint batches, and a request writing a session is
        // never waited for (its session is collected next time if still due).
        gc_sql(WithNow("DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions "
                       "WHERE expires <= {now} LIMIT $2 FOR UPDATE SKIP LOCKED)",
                       gc_now)),
        count_sql(WithNow("SELECT count(*) FROM sessions WHERE expires > {now}", gc_now)),
        load{"sessiond_load", load_sql.c_str()},
        touch{"sessiond_touch", touch_sql.c_str()},
        alive{"sessiond_alive", alive_sql.c_str()},
        insert{"sessiond_insert", insert_sql.c_str()},
        gc{"sessiond_gc", gc_sql.c_str()},
        count{"sessiond_count", count_sql.c_str()} {}

  std::string now, gc_now, load_sql, touch_sql, alive_sql, insert_sql, gc_sql, count_sql;
  Statement load, touch, alive, insert, gc, count;
  Statement set_item{"sessiond_set_item",
                     "INSERT INTO items (id_hash, key, value) VALUES ($1, $2, $3) "
                     "ON CONFLICT (id_hash, key) DO UPDATE SET value = excluded.value"};
  Statement remove_item{"sessiond_remove_item", "DELETE FROM items WHERE id_hash = $1 AND key = $2"};
  Statement clear_items{"sessiond_clear_items", "DELETE FROM items WHERE id_hash = $1"};
  Statement totals{"sessiond_totals",
                   "SELECT count(*), coalesce(sum(length(key) + length(value)), 0)::bigint "
                   "FROM items WHERE id_hash = $1"};
  Statement rename{"sessiond_rename", "UPDATE sessions SET id_hash = $2 WHERE id_hash = $1"};
  Statement remove{"sessiond_delete", "DELETE FROM sessions WHERE id_hash = $1"};
  Statement holds{"sessiond_holds", "SELECT 1 FROM sessions WHERE id_hash = $1"};
};

// The unit's statements are pipelined (pg_conn.h): those whose answer the
// unit needs (Touch, Alive, Totals) wait for it; the others are sent with
// the next one that waits, or with the COMMIT. An error of a statement sent
// ahead is thrown there, and the whole unit is undone.
class PgBackend::Writer final : public StoreWriter {
 public:
  Writer(pg::Conn& conn, const Statements& sql, const StoreTimeouts& t) : c_(conn), sql_(sql), t_(t) {}

  std::vector<Param> Timed(const IdDigest& d, std::int64_t now) const {
    return {Param::Bytes(d.data(), d.size()), Param::Int(now), Param::Int(t_.idle), Param::Int(t_.absolute)};
  }
  static Param Digest(const IdDigest& d) { return Param::Bytes(d.data(), d.size()); }

  bool Touch(const IdDigest& d, std::int64_t now) override {
    c_.Send(sql_.touch, Timed(d, now));
    return c_.Sync().back().affected() != 0;
  }
  bool Alive(const IdDigest& d, std::int64_t now) override {
    c_.Send(sql_.alive, Timed(d, now));
    return c_.Sync().back().rows() != 0;
  }
  void Insert(const IdDigest& d, std::int64_t now) override { c_.Send(sql_.insert, Timed(d, now)); }
  void SetItem(const IdDigest& d, std::string_view key, std::string_view value) override {
    c_.Send(sql_.set_item, {Digest(d), Param::Bytes(key), Param::Bytes(value)});
  }
  void RemoveItem(const IdDigest& d, std::string_view key) override {
    c_.Send(sql_.remove_item, {Digest(d), Param::Bytes(key)});
  }
  void ClearItems(const IdDigest& d) override { c_.Send(sql_.clear_items, {Digest(d)}); }
  std::pair<std::size_t, std::size_t> Totals(const IdDigest& d) override {
    c_.Send(sql_.totals, {Digest(d)});
    pg::Result r = c_.Sync().back();
    return {static_cast<std::size_t>(r.int64(0, 0)), static_cast<std::size_t>(r.int64(0, 1))};
  }
  void Rename(const IdDigest& from, const IdDigest& to) override {
    c_.Send(sql_.rename, {Digest(from), Digest(to)});
  }
  void Delete(const IdDigest& d) override { c_.Send(sql_.remove, {Digest(d)}); }

 private:
  pg::Conn& c_;
  const Statements& sql_;
  const StoreTimeouts& t_;
};

namespace {

pg::PoolOptions PoolFor(const PgOptions& options, std::size_t connections, const std::string& name) {
  pg::PoolOptions po;
  po.conn = pg::ConnOptions{options.uri, options.timeout_ms};
  po.size = connections;
  po.init = [](pg::Conn& c) { MigratePgSchema(c); };
  po.name = name;
  return po;
}

}  // namespace

std::shared_ptr<pg::Pool> SharedPgPool(const PgOptions& options, std::size_t connections, const std::string& name) {
  return pg::Pool::Shared(PoolFor(options, connections, name));
}

// A connection of the pool for one call; counts its round trips for
// round_trips() and remembers its server process for backend_pid().
class PgBackend::Borrowed {
 public:
  explicit Borrowed(PgBackend& b) : b_(b), lease_(b.pool_->Acquire()), start_(lease_->round_trips()) {}
  ~Borrowed() {
    b_.trips_ += lease_->round_trips() - start_;
    b_.pid_ = lease_->backend_pid();
  }
  pg::Conn& operator*() const { return *lease_; }
  pg::Conn* operator->() const { return &*lease_; }

 private:
  PgBackend& b_;
  pg::Pool::Lease lease_;
  std::int64_t start_;
};

PgBackend::PgBackend(const PgOptions& options)
    : opts_(options),
      sql_(std::make_unique<Statements>(options.server_clock)),
      pool_(options.pool ? options.pool : std::make_shared<pg::Pool>(PoolFor(options, 1, "PostgreSQL"))) {}

PgBackend::~PgBackend() = default;

void PgBackend::Connect() { pool_->Check(); }

std::optional<Session> PgBackend::Load(const IdDigest& d, std::string_view id, std::int64_t now) {
  Borrowed conn(*this);
  // One statement: the row and its items from one snapshot, one round trip.
  conn->Send(sql_->load, Writer(*conn, *sql_, opts_.timeouts).Timed(d, now));
  pg::Result r = conn->Sync().back();
  if (r.rows() == 0) return std::nullopt;
  Session s;
  s.id = std::string(id);
  s.created = r.int64(0, 0);
  s.accessed = r.int64(0, 1);
  s.now = r.int64(0, 4);
  for (int i = 0; i < r.rows(); ++i)
    if (!r.null(i, 2)) s.items.emplace(std::string(r.bytes(i, 2)), std::string(r.bytes(i, 3)));
  return s;
}

// BEGIN, the unit, COMMIT, on this thread's own connection. There is no
// group commit here (unlike SQLite's single writer, where one fsync per
// transaction is the bottleneck): PostgreSQL already flushes the WAL of
// commits from many connections together (a backend that finds its commit
// record flushed by another's fsync returns at once), so concurrent workers
// share WAL flushes without our help, and each request keeps its own
// transaction, row locks and error.
void PgBackend::Write(const std::function<void(StoreWriter&)>& unit) {
  Borrowed conn(*this);
  pg::Conn& c = *conn;
  try {
    c.Send("BEGIN");  // sent with the unit's first statement that waits
    Writer w(c, *sql_, opts_.timeouts);
    unit(w);
    c.ClearNotices();
    c.Send("COMMIT");
    std::vector<pg::Result> r;
    try {
      r = c.Sync();
    } catch (const StoreError& e) {
      if (c.connected()) throw;
      // The COMMIT may or may not have reached the server and been applied:
      // the outcome is unknown, and it is reported as a failure.
      throw StoreError(std::string(e.what()) + " (connection lost during COMMIT: outcome unknown)",
                       e.code(), true);
    }
    // COMMIT of a transaction that failed reports ROLLBACK, not an error.
    if (r.back().command() != "COMMIT")
      throw StoreError("PostgreSQL: the transaction was rolled back", 0, true);
    // A COMMIT whose wait for synchronous replication was cancelled
    // (pg_cancel_backend, a server shutting down) has committed on this
    // server but is not on the standby it promised: the server says so with
    // a WARNING only, and a failover now would lose it. Not a success. (The
    // statement timeout does not end that wait -- PostgreSQL disables it
    // before committing -- but Conn's own bound on waiting does, as an error.)
    if (!c.notices().empty())
      throw StoreError("PostgreSQL: COMMIT not confirmed: " + c.notices().front().message, 0, true);
  } catch (...) {
    c.Abort();
    throw;
  }
}

std::size_t PgBackend::CollectGarbage(std::int64_t now, std::size_t batch) {
  Borrowed conn(*this);
  // One statement in its own (implicit) transaction.
  conn->Send(sql_->gc, {Param::Int(now), Param::Int(static_cast<std::int64_t>(batch))});
  return static_cast<std::size_t>(conn->Sync().back().affected());
}

std::optional<std::int64_t> PgBackend::CountLive(std::int64_t now) {
  Borrowed conn(*this);
  conn->Send(sql_->count, {Param::Int(now)});
  return conn->Sync().back().int64(0, 0);
}

bool PgBackend::Holds(const IdDigest& d) {
  Borrowed conn(*this);
  conn->Send(sql_->holds, {Param::Bytes(d.data(), d.size())});
  return conn->Sync().back().rows() != 0;
}

}  // namespace sessiond
