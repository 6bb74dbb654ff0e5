#include "store/postgres/pg_backend.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "store/liveness.h"
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
    // 1 -> 2: rolling upgrades (backend.h, SchemaLevel and Member): the
    // lowest schema version a sessiond must know to use the database, and
    // the sessionds serving it.
    R"sql(
ALTER TABLE sessiond_schema ADD COLUMN required integer NOT NULL DEFAULT 0;
CREATE TABLE sessiond_members (
  member  text PRIMARY KEY,     -- host:pid:tag of a sessiond serve
  release text NOT NULL,        -- its version
  schema  integer NOT NULL,     -- the schema version it knows
  started bigint NOT NULL,      -- unix seconds, the database server's clock
  seen    bigint NOT NULL       -- its last heartbeat
);
)sql",
    // 2 -> 3: the rotation grace, as SQLite's 3 -> 4 (store/sqlite/sqlite_backend.cc).
    R"sql(
CREATE TABLE forwards (
  old_hash bytea PRIMARY KEY,   -- SHA3-256 of the old id
  new_hash bytea NOT NULL,      -- the session's id_hash since the regenerate
  expires  bigint NOT NULL,     -- the end of the grace, the database server's clock
  sealed   bytea NOT NULL       -- the new id, which only the old id opens (session_id.h SealId)
);
CREATE INDEX forwards_by_expiry ON forwards (expires);
)sql",
    // 3 -> 4: exclusive mode's session locks (SESSION_MODE exclusive). No
    // foreign key: a session renamed or deleted under its lock leaves the
    // row to its holder's release, or to the lease's end and the collector.
    R"sql(
CREATE TABLE session_locks (
  id_hash bytea PRIMARY KEY,   -- the locked session's, as sessions.id_hash
  owner   text NOT NULL,       -- the holder's token, one per request
  expires bigint NOT NULL      -- the end of the lease, unix seconds, the database server's clock
);
)sql",
    // 4 -> 5: sites (SESSION_SITE). The site a session belongs to, for the
    // operator's commands (--site); the request path never reads it, since
    // id_hash is already the digest of the site and the id (DigestOf).
    // Sessions made before sites belong to the default site ''. A constant
    // default: PostgreSQL adds the column without rewriting the table.
    R"sql(
ALTER TABLE sessions ADD COLUMN site text NOT NULL DEFAULT '';
)sql",
    // 5 -> 6: an item's type beside its value, as SQLite's 6 -> 7
    // (store/sqlite/sqlite_backend.cc), which says what becomes of the PHP
    // bridge's "json:" values. Whether the rest is JSON is PostgreSQL's own
    // json input (RFC 8259), tried by a function of this session only.
    R"sql(
ALTER TABLE items ADD COLUMN type text NOT NULL DEFAULT 'string' CHECK (type IN ('string', 'json'));
CREATE FUNCTION pg_temp.sessiond_is_json(b bytea) RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM convert_from(b, 'UTF8')::json;
  RETURN true;
EXCEPTION WHEN others THEN
  RETURN false;
END
$fn$;
UPDATE items SET value = substring(value from 6), type = 'json'
  WHERE substring(value from 1 for 5) = '\x6a736f6e3a'::bytea AND pg_temp.sessiond_is_json(substring(value from 6));
DROP FUNCTION pg_temp.sessiond_is_json(bytea);
)sql",
};
static_assert(std::size(kMigrations) == kPgSchemaVersion);

// Functions the store calls, created when missing at any schema version
// (under the schema lock, after the migrations). Adding one is additive: a
// sessiond that does not know it ignores it, so it needs no new schema
// version, and older and newer sessionds of a farm share one database during
// a rolling upgrade. Never edit a shipped one, since the sessionds still
// running call it as it was: a changed function is a new one, under a new
// name (the number is part of it), and the old one stays for them.
// {alive} and {expiry} stand for the store's one definition of a live session
// and of a touched one's expiry (store/liveness.h) over the function's
// parameters (FunctionSql): a change there is a change of every function
// that uses them, so it comes with new names for them.
struct PgFunction {
  const char* signature;  // as to_regprocedure() takes it
  const char* sql;
};
constexpr PgFunction kFunctions[] = {
    // A change of a loaded session in one statement: PolicyStore's unit of
    // work (store/session_store.cc) in SQL, for StoreBackend::Change. Status
    // 0: not alive (nothing written); 1: done; 2: the changes would make the
    // totals n_items, n_bytes exceed the limits (nothing written). The
    // changes arrive folded: Clear first if any, then each key's last Set
    // (p_set_*) or Remove (p_remove_keys); keys are distinct. p_max_items
    // < 0: no limits checked. p_fresh empty: no rename.
    // Under READ COMMITTED each statement below takes a snapshot of its own
    // (a VOLATILE function): the first waits for the session's row lock, so
    // the totals are read after the writer before it has committed, and a
    // session renamed or deleted meanwhile is found gone.
    {"sessiond_change_1(bytea,bigint,bigint,bigint,boolean,boolean,bytea[],bytea[],bytea[],"
     "bigint,bigint,boolean,bytea)",
     R"sql(
CREATE FUNCTION sessiond_change_1(
    p_id bytea, p_now bigint, p_idle bigint, p_absolute bigint, p_touch boolean,
    p_clear boolean, p_set_keys bytea[], p_set_values bytea[], p_remove_keys bytea[],
    p_max_items bigint, p_max_bytes bigint, p_abandon boolean, p_fresh bytea,
    OUT status integer, OUT n_items bigint, OUT n_bytes bigint)
LANGUAGE plpgsql AS $fn$
BEGIN
  n_items := 0;
  n_bytes := 0;
  IF p_abandon THEN
    DELETE FROM sessions WHERE id_hash = p_id AND {alive};
    status := CASE WHEN FOUND THEN 1 ELSE 0 END;
    RETURN;
  END IF;
  PERFORM 1 FROM sessions WHERE id_hash = p_id AND {alive} FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    status := 0;
    RETURN;
  END IF;
  IF p_max_items >= 0 THEN
    SELECT count(*), coalesce(sum(length(t.k) + length(t.v)), 0) INTO n_items, n_bytes
      FROM (SELECT i.key, i.value FROM items i
              WHERE i.id_hash = p_id AND NOT p_clear AND i.key <> ALL (p_set_keys)
                AND i.key <> ALL (p_remove_keys)
            UNION ALL
            SELECT u.k, u.v FROM unnest(p_set_keys, p_set_values) AS u(k, v)) AS t(k, v);
    IF n_items > p_max_items OR n_bytes > p_max_bytes THEN
      status := 2;
      RETURN;
    END IF;
  END IF;
  IF p_touch THEN
    UPDATE sessions SET accessed = p_now, expires = {expiry} WHERE id_hash = p_id;
  END IF;
  IF p_clear THEN
    DELETE FROM items WHERE id_hash = p_id;
  ELSIF cardinality(p_remove_keys) > 0 THEN
    DELETE FROM items WHERE id_hash = p_id AND key = ANY (p_remove_keys);
  END IF;
  IF cardinality(p_set_keys) > 0 THEN
    INSERT INTO items (id_hash, key, value)
      SELECT p_id, u.k, u.v FROM unnest(p_set_keys, p_set_values) AS u(k, v)
      ON CONFLICT (id_hash, key) DO UPDATE SET value = excluded.value;
  END IF;
  IF length(p_fresh) > 0 THEN
    UPDATE sessions SET id_hash = p_fresh WHERE id_hash = p_id;
  END IF;
  status := 1;
END
$fn$;
)sql"},
    // sessiond_change_1 with the items' types (schema version 6): each set
    // key in p_json_keys is stored as a JSON item, every other as a string.
    // (sessiond_change_1 stays for the older members of a farm.)
    {"sessiond_change_2(bytea,bigint,bigint,bigint,boolean,boolean,bytea[],bytea[],bytea[],"
     "bigint,bigint,boolean,bytea,bytea[])",
     R"sql(
CREATE FUNCTION sessiond_change_2(
    p_id bytea, p_now bigint, p_idle bigint, p_absolute bigint, p_touch boolean,
    p_clear boolean, p_set_keys bytea[], p_set_values bytea[], p_remove_keys bytea[],
    p_max_items bigint, p_max_bytes bigint, p_abandon boolean, p_fresh bytea, p_json_keys bytea[],
    OUT status integer, OUT n_items bigint, OUT n_bytes bigint)
LANGUAGE plpgsql AS $fn$
BEGIN
  n_items := 0;
  n_bytes := 0;
  IF p_abandon THEN
    DELETE FROM sessions WHERE id_hash = p_id AND {alive};
    status := CASE WHEN FOUND THEN 1 ELSE 0 END;
    RETURN;
  END IF;
  PERFORM 1 FROM sessions WHERE id_hash = p_id AND {alive} FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    status := 0;
    RETURN;
  END IF;
  IF p_max_items >= 0 THEN
    SELECT count(*), coalesce(sum(length(t.k) + length(t.v)), 0) INTO n_items, n_bytes
      FROM (SELECT i.key, i.value FROM items i
              WHERE i.id_hash = p_id AND NOT p_clear AND i.key <> ALL (p_set_keys)
                AND i.key <> ALL (p_remove_keys)
            UNION ALL
            SELECT u.k, u.v FROM unnest(p_set_keys, p_set_values) AS u(k, v)) AS t(k, v);
    IF n_items > p_max_items OR n_bytes > p_max_bytes THEN
      status := 2;
      RETURN;
    END IF;
  END IF;
  IF p_touch THEN
    UPDATE sessions SET accessed = p_now, expires = {expiry} WHERE id_hash = p_id;
  END IF;
  IF p_clear THEN
    DELETE FROM items WHERE id_hash = p_id;
  ELSIF cardinality(p_remove_keys) > 0 THEN
    DELETE FROM items WHERE id_hash = p_id AND key = ANY (p_remove_keys);
  END IF;
  IF cardinality(p_set_keys) > 0 THEN
    INSERT INTO items (id_hash, key, value, type)
      SELECT p_id, u.k, u.v, CASE WHEN u.k = ANY (p_json_keys) THEN 'json' ELSE 'string' END
        FROM unnest(p_set_keys, p_set_values) AS u(k, v)
      ON CONFLICT (id_hash, key) DO UPDATE SET value = excluded.value, type = excluded.type;
  END IF;
  IF length(p_fresh) > 0 THEN
    UPDATE sessions SET id_hash = p_fresh WHERE id_hash = p_id;
  END IF;
  status := 1;
END
$fn$;
)sql"},
};


// `f`'s SQL with {alive} and {expiry} written out over its parameters p_now,
// p_idle and p_absolute.
std::string FunctionSql(const PgFunction& f) {
  const sql::LiveTerms terms{"", "p_now", "p_idle", "p_absolute"};
  std::string text = f.sql;
  for (auto [mark, with] : {std::pair<std::string, std::string>{"{alive}", sql::Alive(terms)},
                            {"{expiry}", sql::ExpiryAfterTouch("least", terms)}})
    for (std::size_t at = 0; (at = text.find(mark, at)) != std::string::npos; at += with.size())
      text.replace(at, mark.size(), with);
  return text;
}

}  // namespace

SchemaSteps& PgSchemaStepsForTesting() {
  static SchemaSteps steps = [] {
    SchemaSteps s;
    for (const char* sql : kMigrations) s.expand.emplace_back(sql);
    return s;
  }();
  return steps;
}
const SchemaSteps& PgSchemaSteps() { return PgSchemaStepsForTesting(); }

SchemaLevel ReadPgSchemaLevel(pg::Conn& conn) {
  // `required` read through the row's JSON: the column is missing before
  // schema version 2, and this reads either.
  conn.Send(
      "SELECT coalesce(max(version), 0), coalesce(max((to_jsonb(s) ->> 'required')::integer), 0) "
      "FROM sessiond_schema s");
  pg::Result r = conn.Sync().back();
  return {r.int64(0, 0), r.int64(0, 1)};
}

int MigratePgSchema(pg::Conn& conn) {
  static const Statement lock{"sessiond_schema_lock",
                              "SELECT pg_advisory_xact_lock($1), to_regclass('sessiond_schema') IS NOT NULL"};
  try {
    conn.Send("BEGIN");
    conn.Send(lock, {Param::Int(kPgSchemaLock)});
    bool exists = conn.Sync().back().int64(0, 1) != 0;
    SchemaLevel level;
    if (exists) level = ReadPgSchemaLevel(conn);
    const SchemaSteps& steps = PgSchemaSteps();
    RefuseUnusableSchema(level, steps.known(), "PostgreSQL: ", 0);
    const int version = static_cast<int>(level.version);
    // A database a newer member expanded is left as it is.
    for (int v = version; v < steps.known(); ++v) conn.Exec(steps.expand[static_cast<std::size_t>(v)].c_str());
    if (version == 0)
      conn.Exec(("INSERT INTO sessiond_schema (version) VALUES (" + std::to_string(steps.known()) + ")").c_str());
    else if (version < steps.known())
      conn.Exec(("UPDATE sessiond_schema SET version = " + std::to_string(steps.known())).c_str());
    static const Statement has_function{"sessiond_has_function", "SELECT to_regprocedure($1) IS NOT NULL"};
    for (const PgFunction& f : kFunctions) {
      conn.Send(has_function, {Param::Text(f.signature)});
      if (conn.Sync().back().int64(0, 0) == 0) conn.Exec(FunctionSql(f).c_str());
    }
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
  // Parameters of the timed statements: $1 the digest, $2 the caller's now
  // (unused on the server's clock), $3 idle, $4 absolute.
  static sql::LiveTerms Terms(const std::string& now, std::string_view row) { return {row, now, "$3", "$4"}; }

  explicit Statements(bool server_clock)
      : now(server_clock ? kPgServerNow : "$2"),
        gc_now(server_clock ? kPgServerNow : "$1"),
        load_sql("SELECT s.created, s.accessed, i.key, i.value, " + now + ", i.type" +
                 " FROM sessions s LEFT JOIN items i ON i.id_hash = s.id_hash WHERE s.id_hash = $1 AND " +
                 sql::Alive(Terms(now, "s."))),
        // Both lock the session row (FOR NO KEY UPDATE, as the UPDATE does),
        // so the writes of two requests on one session take turns, as they
        // do on SQLite: the second sees the first's items (limits), or finds
        // the session gone (renamed or deleted) when it gets the lock.
        touch_sql("UPDATE sessions SET accessed = " + now +
                  ", expires = " + sql::ExpiryAfterTouch("least", Terms(now, "")) +
                  " WHERE id_hash = $1 AND " + sql::Alive(Terms(now, ""))),
        alive_sql("SELECT 1 FROM sessions WHERE id_hash = $1 AND " + sql::Alive(Terms(now, "")) +
                  " FOR NO KEY UPDATE"),
        insert_sql("INSERT INTO sessions (id_hash, created, accessed, expires, site) VALUES ($1, " + now + ", " +
                   now + ", " + sql::ExpiryOfNew("least", Terms(now, "")) + ", $5)"),
        // A session a request is writing is collected next time if still due.
        gc_sql(sql::SweepExpired(gc_now, "$2", kPgSkipLocked)),
        count_sql("SELECT count(*) FROM sessions WHERE " + sql::Unexpired("", gc_now)),
        // Parameters after the four of every timed statement: $5 touch, $6
        // clear, $7 set keys, $8 their values, $9 removed keys, $10 max
        // items, $11 max bytes, $12 abandon, $13 the fresh digest.
        // $14 the set keys whose values are JSON.
        change_sql("SELECT status, n_items, n_bytes FROM sessiond_change_2($1, " + now +
                   ", $3, $4, $5 <> 0, $6 <> 0, $7, $8, $9, $10, $11, $12 <> 0, $13, $14)"),
        load{"sessiond_load", load_sql.c_str()},
        touch{"sessiond_touch", touch_sql.c_str()},
        alive{"sessiond_alive", alive_sql.c_str()},
        insert{"sessiond_insert", insert_sql.c_str()},
        gc{"sessiond_gc", gc_sql.c_str()},
        count{"sessiond_count", count_sql.c_str()},
        change{"sessiond_change", change_sql.c_str()},
        // After the four of every timed statement: $5 the owner, $6 the lease.
        take_lock_sql("INSERT INTO session_locks (id_hash, owner, expires) VALUES ($1, $5, " + now +
                      " + $6) ON CONFLICT (id_hash) DO UPDATE SET owner = excluded.owner, "
                      "expires = excluded.expires WHERE session_locks.expires <= " + now),
        // FOR UPDATE: a request taking the expired lock waits for the end of
        // the unit that found it held (and then finds it released, or still
        // held until the lease's end).
        holds_lock_sql("SELECT 1 FROM session_locks WHERE id_hash = $1 AND owner = $3 AND expires > " + now +
                       " FOR UPDATE"),
        gc_locks_sql("DELETE FROM session_locks WHERE expires <= " + gc_now),
        // Without a row lock: a request taking the session's lock must not
        // hold the session's row while it waits for the lock's (the commit
        // under the lock takes them the other way round).
        lockable_sql("SELECT 1 FROM sessions WHERE id_hash = $1 AND " + sql::Alive(Terms(now, ""))),
        take_lock{"sessiond_take_lock", take_lock_sql.c_str()},
        holds_lock{"sessiond_holds_lock", holds_lock_sql.c_str()},
        gc_locks{"sessiond_gc_locks", gc_locks_sql.c_str()},
        lockable{"sessiond_lockable", lockable_sql.c_str()} {}

  std::string now, gc_now, load_sql, touch_sql, alive_sql, insert_sql, gc_sql, count_sql, change_sql;
  Statement load, touch, alive, insert, gc, count, change;
  std::string take_lock_sql, holds_lock_sql, gc_locks_sql, lockable_sql;
  Statement take_lock, holds_lock, gc_locks, lockable;
  Statement release_lock{"sessiond_release_lock", "DELETE FROM session_locks WHERE id_hash = $1 AND owner = $2"};
  Statement set_item{"sessiond_set_item",
                     "INSERT INTO items (id_hash, key, value, type) VALUES ($1, $2, $3, $4) "
                     "ON CONFLICT (id_hash, key) DO UPDATE SET value = excluded.value, type = excluded.type"};
  Statement remove_item{"sessiond_remove_item", "DELETE FROM items WHERE id_hash = $1 AND key = $2"};
  Statement clear_items{"sessiond_clear_items", "DELETE FROM items WHERE id_hash = $1"};
  Statement totals{"sessiond_totals",
                   "SELECT count(*), coalesce(sum(length(key) + length(value)), 0)::bigint "
                   "FROM items WHERE id_hash = $1"};
  Statement rename{"sessiond_rename", "UPDATE sessions SET id_hash = $2 WHERE id_hash = $1"};
  Statement remove{"sessiond_delete", "DELETE FROM sessions WHERE id_hash = $1"};
  Statement holds{"sessiond_holds", "SELECT 1 FROM sessions WHERE id_hash = $1"};
  // The rotation grace: $1 the old digest, $2 the caller's now (unused on
  // the server's clock), $3 the new digest, $4 the grace, $5 the sealed id.
  std::string forward_sql = "INSERT INTO forwards (old_hash, new_hash, expires, sealed) VALUES ($1, $3, " + now +
                            " + $4, $5)";
  std::string forwarded_sql = "SELECT new_hash, sealed FROM forwards WHERE old_hash = $1 AND expires > " + now;
  std::string gc_forwards_sql = "DELETE FROM forwards WHERE old_hash IN (SELECT old_hash FROM forwards WHERE "
                                "expires <= " + gc_now + " LIMIT $2" + kPgSkipLocked + ")";
  Statement forward{"sessiond_forward", forward_sql.c_str()};
  Statement forwarded{"sessiond_forwarded", forwarded_sql.c_str()};
  Statement gc_forwards{"sessiond_gc_forwards", gc_forwards_sql.c_str()};
};

// The unit's statements are pipelined (pg_conn.h): those whose answer the
// unit needs (Touch, Alive, Totals) wait for it; the others are sent with
// the next one that waits, or with the COMMIT. An error of a statement sent
// ahead is thrown there, and the whole unit is undone.
class PgBackend::Writer final : public StoreWriter {
 public:
  Writer(pg::Conn& conn, const Statements& sql) : c_(conn), sql_(sql) {}

  // $1 the digest, $2 now, $3 idle and $4 absolute of the session's site.
  static std::vector<Param> Timed(const IdDigest& d, std::int64_t now, const StoreTimeouts& t) {
    return {Param::Bytes(d.data(), d.size()), Param::Int(now), Param::Int(t.idle), Param::Int(t.absolute)};
  }
  static Param Digest(const IdDigest& d) { return Param::Bytes(d.data(), d.size()); }

  bool Touch(const IdDigest& d, std::int64_t now, const StoreTimeouts& t) override {
    c_.Send(sql_.touch, Timed(d, now, t));
    return c_.Sync().back().affected() != 0;
  }
  bool Alive(const IdDigest& d, std::int64_t now, const StoreTimeouts& t) override {
    c_.Send(sql_.alive, Timed(d, now, t));
    return c_.Sync().back().rows() != 0;
  }
  void Insert(const IdDigest& d, std::int64_t now, const StoreTimeouts& t, std::string_view site) override {
    std::vector<Param> params = Timed(d, now, t);
    params.push_back(Param::Text(site));
    c_.Send(sql_.insert, params);
  }
  void SetItem(const IdDigest& d, std::string_view key, std::string_view value, ItemType type) override {
    c_.Send(sql_.set_item, {Digest(d), Param::Bytes(key), Param::Bytes(value), Param::Text(TypeName(type))});
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
  void Forward(const IdDigest& from, const IdDigest& to, const SealedId& sealed, std::int64_t now,
               std::int64_t grace) override {
    c_.Send(sql_.forward, {Digest(from), Param::Int(now), Digest(to), Param::Int(grace),
                           Param::Bytes(sealed.data(), sealed.size())});
  }
  SessionStore::LockOutcome TakeLock(const IdDigest& d, std::string_view owner, std::int64_t now, std::int64_t lease,
                                     const StoreTimeouts& t) override {
    c_.Send(sql_.lockable, Timed(d, now, t));
    if (c_.Sync().back().rows() == 0) return SessionStore::LockOutcome::NoSession;
    std::vector<Param> p = Timed(d, now, t);
    p.insert(p.end(), {Param::Text(owner), Param::Int(lease)});
    c_.Send(sql_.take_lock, p);
    return c_.Sync().back().affected() != 0 ? SessionStore::LockOutcome::Taken : SessionStore::LockOutcome::Held;
  }
  bool HoldsLock(const IdDigest& d, std::string_view owner, std::int64_t now) override {
    c_.Send(sql_.holds_lock, {Digest(d), Param::Int(now), Param::Text(owner)});
    return c_.Sync().back().rows() != 0;
  }
  void ReleaseLock(const IdDigest& d, std::string_view owner) override {
    c_.Send(sql_.release_lock, {Digest(d), Param::Text(owner)});
  }

 private:
  pg::Conn& c_;
  const Statements& sql_;
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
  explicit Borrowed(PgBackend& b) : b_(b), lease_(b.pool_->Acquire(!b.opts_.background)), start_(lease_->round_trips()) {}
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

std::optional<Session> PgBackend::Load(const IdDigest& d, std::string_view id, std::int64_t now,
                                       const StoreTimeouts& t) {
  Borrowed conn(*this);
  // One statement: the row and its items from one snapshot, one round trip.
  conn->Send(sql_->load, Writer::Timed(d, now, t));
  pg::Result r = conn->Sync().back();
  if (r.rows() == 0) return std::nullopt;
  Session s;
  s.id = std::string(id);
  s.created = r.int64(0, 0);
  s.accessed = r.int64(0, 1);
  s.now = r.int64(0, 4);
  for (int i = 0; i < r.rows(); ++i) {
    if (r.null(i, 2)) continue;
    std::string key(r.bytes(i, 2));
    if (r.bytes(i, 5) == "json") s.json.insert(key);
    s.items.emplace(std::move(key), std::string(r.bytes(i, 3)));
  }
  return s;
}

// BEGIN, what `send` queues on `c`, COMMIT: when `send` waits for no answer,
// one round trip. There is no group commit of different sessions' work here
// (unlike SQLite's single writer, where one fsync per transaction is the
// bottleneck): PostgreSQL already flushes the WAL of commits from many
// connections together (a backend that finds its commit record flushed by
// another's fsync returns at once), so concurrent workers share WAL flushes
// without our help, and each request keeps its own transaction, row locks
// and error. (Changes of one session, which would wait for each other's
// flush under its row lock, are grouped: see Change.) Returns the results of
// the last round trip, the COMMIT's last.
std::vector<pg::Result> PgBackend::Transaction(pg::Conn& c, const std::function<void()>& send) {
  try {
    c.Send("BEGIN");  // sent with the first statement that waits, or with the COMMIT
    send();
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
    return r;
  } catch (...) {
    c.Abort();
    throw;
  }
}

void PgBackend::Write(const std::function<void(StoreWriter&)>& unit) {
  Borrowed conn(*this);
  Transaction(*conn, [&] {
    Writer w(*conn, *sql_);
    unit(w);
  });
}

namespace {

// A change waiting for the transaction that will carry it (PgBackend::Change).
struct QueuedChange {
  const std::vector<Param>* params;  // the call's, alive while its thread waits
  SessionChangeResult result;
  std::exception_ptr error;
  bool done = false;
};

// The changes of one session in this process: whether a transaction with
// some of them is in flight, and those waiting for the next one.
struct ChangeLane {
  bool busy = false;
  std::vector<QueuedChange*> waiting;
};

struct ChangeLanes {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, ChangeLane> by_session;  // by URI, clock and digest
  std::size_t queued = 0;
};

ChangeLanes& Lanes() {
  static ChangeLanes lanes;
  return lanes;
}

}  // namespace

// One round trip: BEGIN, the function call and COMMIT pipelined. When the
// function finds the session gone or the limits exceeded it writes nothing,
// and the COMMIT ends a transaction that changed nothing. When it fails, the
// COMMIT is skipped by the server (the pipeline is aborted) and Transaction
// rolls back.
std::optional<SessionChangeResult> PgBackend::Change(const SessionChange& change) {
  // The changes folded into their net effect, which the function applies as
  // a whole: a Clear (Replace is one) drops every earlier change, and each
  // key keeps its last Set (value and type) or Remove (no value).
  struct Net {
    const std::string* value;  // nullptr: removed
    ItemType type;
  };
  bool clear = false;
  std::map<std::string_view, Net> net;
  for (const sessiond::Change& ch : change.changes) {
    switch (ch.kind) {
      case sessiond::Change::Kind::Set: net[ch.key] = {&ch.value, ch.type}; break;
      case sessiond::Change::Kind::Remove: net[ch.key] = {nullptr, ItemType::String}; break;
      case sessiond::Change::Kind::Clear:
      case sessiond::Change::Kind::Replace:
        clear = true;
        net.clear();
        for (const auto& [k, v] : ch.items) net[k] = {&v, ch.json.count(k) ? ItemType::Json : ItemType::String};
        break;
    }
  }
  std::vector<std::string_view> set_keys, set_values, remove_keys, json_keys;
  for (const auto& [k, v] : net) {
    if (v.value) {
      set_keys.push_back(k);
      set_values.push_back(*v.value);
      if (v.type == ItemType::Json) json_keys.push_back(k);
    } else if (!clear) {
      remove_keys.push_back(k);
    }
  }
  const std::string keys = pg::EncodeBytesArray(set_keys), values = pg::EncodeBytesArray(set_values),
                    removed = pg::EncodeBytesArray(remove_keys), json = pg::EncodeBytesArray(json_keys);
  const SessionLimits* limits = change.limits;
  std::vector<Param> params = {Param::Bytes(change.id.data(), change.id.size()), Param::Int(change.now),
                               Param::Int(change.timeouts.idle), Param::Int(change.timeouts.absolute)};
  params.insert(params.end(),
                {Param::Int(change.touch), Param::Int(clear), Param::BytesArray(keys), Param::BytesArray(values),
                 Param::BytesArray(removed), Param::Int(limits ? static_cast<std::int64_t>(limits->max_items) : -1),
                 Param::Int(limits ? static_cast<std::int64_t>(limits->max_session_bytes) : -1),
                 Param::Int(change.abandon),
                 change.fresh ? Param::Bytes(change.fresh->data(), change.fresh->size()) : Param::Bytes(""),
                 Param::BytesArray(json)});

  // The changes of one session from several workers of this process at once
  // (requests of one visitor) go in one transaction: each would otherwise
  // wait for the row lock through the COMMIT before it, WAL flush included,
  // one after another. The first becomes the leader and sends its change at
  // once; those that come while its transaction is in flight queue, and the
  // next leader sends them all: BEGIN, one call each, COMMIT, still one
  // round trip. Each call sees the ones before it (merge per key, exact
  // limits, a session gone by an earlier abandon or regenerate), and one that
  // is refused (gone, over its limits) writes nothing. Changes of different
  // sessions are never grouped: PostgreSQL already overlaps their flushes.
  ChangeLanes& lanes = Lanes();
  const std::string key = opts_.uri + (opts_.server_clock ? '\1' : '\0') +
                          std::string(reinterpret_cast<const char*>(change.id.data()), change.id.size());
  QueuedChange me;
  me.params = &params;
  std::unique_lock<std::mutex> lock(lanes.mu);
  ChangeLane& lane = lanes.by_session[key];
  lane.waiting.push_back(&me);
  ++lanes.queued;
  while (!me.done && lane.busy) lanes.cv.wait(lock);
  if (!me.done) {
    lane.busy = true;
    std::vector<QueuedChange*> batch;
    batch.swap(lane.waiting);
    lanes.queued -= batch.size();
    lock.unlock();
    // Nothing below may throw past here with the lane busy: every outcome,
    // error included, is written into the batch's own entries (read by their
    // threads only once `done` is set under the lock).
    try {
      Borrowed conn(*this);  // taken by the leader only, for the whole batch
      std::vector<pg::Result> r = Transaction(*conn, [&] {
        for (QueuedChange* q : batch) conn->Send(sql_->change, *q->params);
      });
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const pg::Result& row = r[1 + i];  // BEGIN, the calls, COMMIT
        SessionChangeResult& out = batch[i]->result;
        switch (row.int64(0, 0)) {
          case 0: out.status = SessionChangeResult::Status::Gone; break;
          case 1: out.status = SessionChangeResult::Status::Done; break;
          default: out.status = SessionChangeResult::Status::OverLimit; break;
        }
        out.items = static_cast<std::size_t>(row.int64(0, 1));
        out.bytes = static_cast<std::size_t>(row.int64(0, 2));
      }
    } catch (const StoreError& e) {
      for (QueuedChange* q : batch) q->error = std::make_exception_ptr(e);  // one copy per thread
    } catch (...) {
      for (QueuedChange* q : batch) q->error = std::current_exception();
    }
    lock.lock();
    for (QueuedChange* q : batch) q->done = true;
    lane.busy = false;
    if (lane.waiting.empty()) lanes.by_session.erase(key);
    lanes.cv.notify_all();
  }
  if (me.error) std::rethrow_exception(me.error);
  return me.result;
}

std::size_t PgBackend::queued_changes() {
  ChangeLanes& lanes = Lanes();
  std::lock_guard<std::mutex> lock(lanes.mu);
  return lanes.queued;
}

std::size_t PgBackend::CollectGarbage(std::int64_t now, std::size_t batch) {
  Borrowed conn(*this);
  // The locks whose lease ended (few: only holders that died leave one),
  // then one batch of sessions.
  conn->Send(sql_->gc_locks, {Param::Int(now)});
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

std::optional<Forwarding> PgBackend::Forwarded(const IdDigest& d, std::int64_t now) {
  Borrowed conn(*this);
  conn->Send(sql_->forwarded, {Param::Bytes(d.data(), d.size()), Param::Int(now)});
  pg::Result r = conn->Sync().back();
  if (r.rows() == 0) return std::nullopt;
  std::string_view to = r.bytes(0, 0), sealed = r.bytes(0, 1);
  Forwarding f{};
  if (to.size() != f.to.size() || sealed.size() != f.sealed.size()) return std::nullopt;  // not ours
  std::copy(to.begin(), to.end(), f.to.begin());
  std::copy(sealed.begin(), sealed.end(), f.sealed.begin());
  return f;
}

std::size_t PgBackend::CollectForwards(std::int64_t now, std::size_t batch) {
  Borrowed conn(*this);
  conn->Send(sql_->gc_forwards, {Param::Int(now), Param::Int(static_cast<std::int64_t>(batch))});
  return static_cast<std::size_t>(conn->Sync().back().affected());
}

// Sent as text once per heartbeat, not prepared: off the hot path.
void PgBackend::RecordMember(const Member& member, std::int64_t now) {
  static const pg::Statement upsert_server{
      "sessiond_member_server",
      "INSERT INTO sessiond_members (member, release, schema, started, seen) VALUES ($1, $2, $3, "
      "floor(extract(epoch from transaction_timestamp()))::bigint, "
      "floor(extract(epoch from transaction_timestamp()))::bigint) "
      "ON CONFLICT (member) DO UPDATE SET release = excluded.release, schema = excluded.schema, "
      "seen = excluded.seen"};
  static const pg::Statement upsert_caller{
      "sessiond_member_caller",
      "INSERT INTO sessiond_members (member, release, schema, started, seen) VALUES ($1, $2, $3, $4, $4) "
      "ON CONFLICT (member) DO UPDATE SET release = excluded.release, schema = excluded.schema, "
      "seen = excluded.seen"};
  static const pg::Statement forget_server{
      "sessiond_members_forget_server",
      "DELETE FROM sessiond_members WHERE seen < floor(extract(epoch from transaction_timestamp()))::bigint - $1"};
  static const pg::Statement forget_caller{"sessiond_members_forget_caller",
                                           "DELETE FROM sessiond_members WHERE seen < $2 - $1"};
  Borrowed conn(*this);
  std::vector<Param> params{Param::Text(member.name), Param::Text(member.release),
                            Param::Int(PgSchemaSteps().known())};
  if (!opts_.server_clock) params.push_back(Param::Int(now));
  conn->Send(opts_.server_clock ? upsert_server : upsert_caller, params);
  if (opts_.server_clock)
    conn->Send(forget_server, {Param::Int(kForgetAfter)});
  else
    conn->Send(forget_caller, {Param::Int(kForgetAfter), Param::Int(now)});
  conn->Sync();
}

void PgBackend::ForgetMember(std::string_view name) {
  static const pg::Statement forget{"sessiond_member_gone", "DELETE FROM sessiond_members WHERE member = $1"};
  Borrowed conn(*this);
  conn->Send(forget, {Param::Text(name)});
  conn->Sync();
}

}  // namespace sessiond
