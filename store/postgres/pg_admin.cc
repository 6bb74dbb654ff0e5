#include "store/postgres/pg_admin.h"

#include <deque>
#include <memory>

#include "store/liveness.h"
#include "store/postgres/pg_backend.h"
#include "store/postgres/pg_conn.h"

namespace sessiond {
namespace {

class ResultRow final : public SqlRow {
 public:
  ResultRow(const pg::Result& r, int row) : r_(r), row_(row) {}
  bool Null(int column) const override { return r_.null(row_, column); }
  std::int64_t Int(int column) const override { return r_.int64(row_, column); }
  std::string Bytes(int column) const override { return std::string(r_.bytes(row_, column)); }

 private:
  const pg::Result& r_;
  int row_;
};

// Keys, values and digests are all bytea: bytes in, bytes out.
std::vector<pg::Param> ParamsOf(const std::vector<SqlParam>& params) {
  std::vector<pg::Param> out;
  for (const SqlParam& p : params)
    out.push_back(p.kind == SqlParam::Kind::Int ? pg::Param::Int(p.number) : pg::Param::Bytes(p.bytes));
  return out;
}

// The database: every read is one statement (one snapshot); a series of
// writes goes in one transaction, pipelined in one round trip.
class PgEngine final : public AdminEngine {
 public:
  explicit PgEngine(const PgAdminOptions& o) : opts(o), conn(pg::ConnOptions{o.uri, o.timeout_ms}) {
    // The server refuses writes; SqlAdmin says so first.
    if (!o.writable) conn.Exec("SET default_transaction_read_only = on");
    conn.Send("SELECT to_regclass('sessiond_schema') IS NOT NULL");
    if (!conn.Sync().back().int64(0, 0))
      throw StoreError("PostgreSQL: the database holds no sessiond store (no table sessiond_schema; "
                       "sessiond serve creates it)",
                       0, false);
    RefuseUnusableSchema(ReadPgSchemaLevel(conn), PgSchemaSteps().known(), "PostgreSQL: ", 0);
  }

  std::string Param(int n) const override { return "$" + std::to_string(n); }
  // The servers' clock unless the tests pass theirs (PgAdminOptions).
  std::string Now(int n) const override { return opts.server_clock ? kPgServerNow : Param(n); }
  std::string ByteLength(std::string_view column) const override { return "length(" + std::string(column) + ")"; }
  std::string NotADigest() const override { return "length(id_hash) != 32"; }

  void Query(const std::string& sql, const std::vector<SqlParam>& params,
             const std::function<void(const SqlRow&)>& row) override {
    pg::Result r = Run(sql, ParamsOf(params));
    for (int i = 0; i < r.rows(); ++i) row(ResultRow(r, i));
  }

  std::size_t WriteEach(const std::string& sql, const std::vector<std::vector<SqlParam>>& each) override {
    const pg::Statement& s = Prepared(sql);
    try {
      conn.Send("BEGIN");
      for (const std::vector<SqlParam>& params : each) conn.Send(s, ParamsOf(params));
      conn.Send("COMMIT");
      std::vector<pg::Result> r = conn.Sync();
      if (r.back().command() != "COMMIT") throw StoreError("PostgreSQL: the transaction was rolled back", 0, true);
      std::size_t changed = 0;
      for (std::size_t i = 1; i + 1 < r.size(); ++i) changed += static_cast<std::size_t>(r[i].affected());
      return changed;
    } catch (...) {
      conn.Abort();
      throw;
    }
  }

  // The servers' sweep (PgBackend::CollectGarbage), one statement in its own
  // transaction.
  std::size_t SweepBatch(std::int64_t now, std::size_t batch) override {
    return static_cast<std::size_t>(
        Run(sql::SweepExpired(Now(1), "$2", kPgSkipLocked), {pg::Param::Int(now), pg::Param::Int(static_cast<std::int64_t>(batch))})
            .affected());
  }

  bool writable() const override { return opts.writable; }

  int SchemaVersion() override {
    conn.Send("SELECT coalesce(max(version), 0) FROM sessiond_schema");
    return static_cast<int>(conn.Sync().back().int64(0, 0));
  }
  int KnownSchemaVersion() const override { return PgSchemaSteps().known(); }
  int ItemTypesSince() const override { return kPgItemTypesSince; }

  SchemaLevel Level() override { return ReadPgSchemaLevel(conn); }
  const SchemaSteps& Steps() const override { return PgSchemaSteps(); }
  bool HasMembers() override { return Run("SELECT to_regclass('sessiond_members') IS NOT NULL", {}).int64(0, 0) != 0; }
  // Under the advisory lock sessionds take to migrate the schema as they
  // start, so none starts meanwhile.
  void Contract(const std::vector<std::string>& steps, int required, const std::vector<Check>& checks,
                const std::vector<SqlParam>& params) override {
    try {
      conn.Exec("BEGIN");
      conn.Exec(("SELECT pg_advisory_xact_lock(" + std::to_string(kPgSchemaLock) + ")").c_str());
      // Each statement reads what committed before it (READ COMMITTED),
      // so after the lock: a Contract that held it before is seen.
      for (const Check& check : checks)
        if (Run(check.sql, ParamsOf(params)).int64(0, 0) != 0) throw StoreError(check.refused, 0, false);
      for (const std::string& sql : steps) conn.Exec(sql.c_str());
      conn.Exec(("UPDATE sessiond_schema SET required = " + std::to_string(required)).c_str());
      conn.Exec("COMMIT");
    } catch (...) {
      conn.Abort();
      throw;
    }
  }

  // The tables' and their indexes' size on the server; PostgreSQL keeps
  // its WAL and free space to itself.
  void AddSizes(StoreStats& st) override {
    st.file_bytes = Run("SELECT (pg_total_relation_size('sessions') + pg_total_relation_size('items'))::bigint", {})
                        .int64(0, 0);
  }

  // The server keeps its own pages consistent (checksums, WAL); what can go
  // wrong here is what someone typed into psql, which SqlAdmin checks.
  void CheckStorage(bool /*quick*/, std::vector<std::string>& /*problems*/) override {}
  void CheckSchema(int /*version*/, std::vector<std::string>& /*problems*/) override {}

  void Backup(const std::string& /*path*/) override {
    throw StoreError("sessiond backup copies SQLite files only; back up a PostgreSQL store with pg_dump "
                     "(pg_dump -Fc -t sessiond_schema -t sessiond_members -t sessions -t items -t forwards -t session_locks DBNAME > FILE) or the server's "
                     "own backups",
                     0, false);
  }

 private:
  // `sql` prepared under a name of its own (the queries vary with the
  // number of items matched); the names and texts live as long as the Conn.
  const pg::Statement& Prepared(const std::string& sql) {
    for (const Entry& e : statements)
      if (e.sql == sql) return e.statement;
    Entry& e = statements.emplace_back();
    e.name = "sessiond_admin_" + std::to_string(statements.size());
    e.sql = sql;
    e.statement = pg::Statement{e.name.c_str(), e.sql.c_str()};
    return e.statement;
  }

  pg::Result Run(const std::string& sql, const std::vector<pg::Param>& params) {
    conn.Send(Prepared(sql), params);
    return conn.Sync().back();
  }

  struct Entry {
    std::string name, sql;
    pg::Statement statement{};
  };
  PgAdminOptions opts;
  pg::Conn conn;
  std::deque<Entry> statements;  // a deque: entries never move
};

}  // namespace

PgAdmin::PgAdmin(const PgAdminOptions& options)
    : SqlAdmin(std::make_unique<PgEngine>(options), options.after_scan_for_testing) {}

}  // namespace sessiond
