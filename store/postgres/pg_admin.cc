#include "store/postgres/pg_admin.h"

#include <algorithm>
#include <stdexcept>

#include "store/postgres/pg_backend.h"
#include "store/postgres/pg_conn.h"

namespace sessiond {
namespace {

using pg::Param;

// Sessions deleted per transaction by Remove and RemoveWhere: a request
// waits at most for one such batch (only one whose session is in it).
constexpr std::size_t kDeleteBatch = 500;

// Scans RemoveWhere makes, each followed by deletes by key, before it
// deletes by the items themselves in one statement (see there).
constexpr int kLogoutScans = 4;

// " AND EXISTS (...)" per match: the session `session` (an SQL expression)
// holds that item. Keys and values are parameters $first, $first + 1, ...
std::string HoldsItems(std::size_t matches, const std::string& session, int first) {
  std::string sql;
  for (std::size_t i = 0; i < matches; ++i) {
    int k = first + 2 * static_cast<int>(i);
    sql += " AND EXISTS (SELECT 1 FROM items w WHERE w.id_hash = " + session + " AND w.key = $" +
           std::to_string(k) + " AND w.value = $" + std::to_string(k + 1) + ")";
  }
  return sql;
}

void AddItems(std::vector<Param>& params, const std::vector<ItemMatch>& where) {
  for (const ItemMatch& m : where) {
    params.push_back(Param::Bytes(m.key));
    params.push_back(Param::Bytes(m.value));
  }
}

// A digest as stored; a row typed into psql may hold something shorter or
// longer: it is cut or padded with zeros (check reports it).
IdDigest DigestAt(const pg::Result& r, int row, int col) {
  std::string_view b = r.bytes(row, col);
  IdDigest d{};
  std::copy_n(b.begin(), std::min(b.size(), d.size()), d.begin());
  return d;
}


}  // namespace

struct PgAdmin::Impl {
  explicit Impl(const PgAdminOptions& o) : opts(o), conn(pg::ConnOptions{o.uri, o.timeout_ms}) {
    // The server refuses writes; the methods that write say so first.
    if (!o.writable) conn.Exec("SET default_transaction_read_only = on");
    conn.Send("SELECT to_regclass('sessiond_schema') IS NOT NULL");
    if (!conn.Sync().back().int64(0, 0))
      throw StoreError("PostgreSQL: the database holds no sessiond store (no table sessiond_schema; "
                       "sessiond serve creates it)",
                       0, false);
    int version = Version();
    if (version > kPgSchemaVersion)
      throw StoreError("PostgreSQL: database schema version " + std::to_string(version) +
                           " is newer than this sessiond supports (" + std::to_string(kPgSchemaVersion) + ")",
                       0, false);
  }

  int Version() {
    conn.Send("SELECT coalesce(max(version), 0) FROM sessiond_schema");
    return static_cast<int>(conn.Sync().back().int64(0, 0));
  }

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

  pg::Result Query(const std::string& sql, const std::vector<Param>& params) {
    conn.Send(Prepared(sql), params);
    return conn.Sync().back();
  }

  // The SQL for `now`: the server's clock, or parameter $n.
  std::string Now(int n) const { return opts.server_clock ? kPgServerNow : "$" + std::to_string(n); }

  void Writable(const char* what) const {
    if (!opts.writable) throw StoreError(std::string(what) + ": the store was opened for reading only", 0, false);
  }

  // Runs `sql` once per digest (each its $1), `kDeleteBatch` per
  // transaction, each transaction one round trip; returns the rows changed.
  std::size_t DeleteEach(const std::vector<IdDigest>& digests, const std::string& sql,
                         const std::vector<ItemMatch>& where) {
    const pg::Statement& del = Prepared(sql);
    std::size_t removed = 0;
    for (std::size_t at = 0; at < digests.size(); at += kDeleteBatch) {
      try {
        conn.Send("BEGIN");
        for (std::size_t i = at; i < std::min(digests.size(), at + kDeleteBatch); ++i) {
          std::vector<Param> params{Param::Bytes(digests[i].data(), digests[i].size())};
          AddItems(params, where);
          conn.Send(del, params);
        }
        conn.Send("COMMIT");
        std::vector<pg::Result> r = conn.Sync();
        if (r.back().command() != "COMMIT") throw StoreError("PostgreSQL: the transaction was rolled back", 0, true);
        for (std::size_t i = 1; i + 1 < r.size(); ++i) removed += static_cast<std::size_t>(r[i].affected());
      } catch (...) {
        conn.Abort();
        throw;
      }
    }
    return removed;
  }

  struct Entry {
    std::string name, sql;
    pg::Statement statement{};
  };
  PgAdminOptions opts;
  pg::Conn conn;
  std::deque<Entry> statements;  // a deque: entries never move
};

PgAdmin::PgAdmin(const PgAdminOptions& options) : impl_(std::make_unique<Impl>(options)) {}
PgAdmin::~PgAdmin() = default;

std::vector<SessionSummary> PgAdmin::List(const ListQuery& q, std::int64_t now) {
  Impl& m = *impl_;
  std::string sql =
      "SELECT s.id_hash, s.created, s.accessed, s.expires, count(i.key), "
      "coalesce(sum(length(i.key) + length(i.value)), 0)::bigint "
      "FROM sessions s LEFT JOIN items i ON i.id_hash = s.id_hash WHERE true";
  if (q.which == ListQuery::Which::Live) sql += " AND s.expires > " + m.Now(1);
  if (q.which == ListQuery::Which::Expired) sql += " AND s.expires <= " + m.Now(1);
  sql += HoldsItems(q.where.size(), "s.id_hash", 2);
  sql += " GROUP BY s.id_hash ORDER BY s.created DESC, s.id_hash";
  int limit_at = 2 + 2 * static_cast<int>(q.where.size());
  if (q.limit) sql += " LIMIT $" + std::to_string(limit_at);
  std::vector<Param> params{Param::Int(now)};
  AddItems(params, q.where);
  if (q.limit) params.push_back(Param::Int(static_cast<std::int64_t>(q.limit)));
  // One statement: one snapshot, read whole before anything is printed.
  pg::Result r = m.Query(sql, params);
  std::vector<SessionSummary> out;
  for (int i = 0; i < r.rows(); ++i) {
    SessionSummary row;
    row.digest = DigestAt(r, i, 0);
    row.created = r.int64(i, 1);
    row.accessed = r.int64(i, 2);
    row.expires = r.int64(i, 3);
    row.items = static_cast<std::size_t>(r.int64(i, 4));
    row.bytes = static_cast<std::size_t>(r.int64(i, 5));
    out.push_back(row);
  }
  return out;
}

std::vector<IdDigest> PgAdmin::FindByPrefix(std::string_view prefix, std::size_t limit) {
  DigestRange range = PrefixRange(prefix);  // throws for what is not a prefix
  const std::string &lo = range.low, &hi = range.high;
  const bool bounded = range.bounded;
  std::string sql = "SELECT id_hash FROM sessions WHERE id_hash >= $1";
  if (bounded) sql += " AND id_hash < $2";  // else $2 goes unused (its type is given)
  sql += " ORDER BY id_hash LIMIT $3";
  pg::Result r = impl_->Query(
      sql, {Param::Bytes(lo), Param::Bytes(hi), Param::Int(static_cast<std::int64_t>(limit))});
  std::vector<IdDigest> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(DigestAt(r, i, 0));
  return out;
}

std::optional<SessionDetail> PgAdmin::Get(const IdDigest& digest) {
  pg::Result r = impl_->Query(
      "SELECT s.created, s.accessed, s.expires, i.key, i.value FROM sessions s "
      "LEFT JOIN items i ON i.id_hash = s.id_hash WHERE s.id_hash = $1",
      {Param::Bytes(digest.data(), digest.size())});
  if (r.rows() == 0) return std::nullopt;
  SessionDetail out;
  out.summary.digest = digest;
  out.summary.created = r.int64(0, 0);
  out.summary.accessed = r.int64(0, 1);
  out.summary.expires = r.int64(0, 2);
  for (int i = 0; i < r.rows(); ++i) {
    if (r.null(i, 3)) continue;  // a session without items
    std::string key(r.bytes(i, 3)), value(r.bytes(i, 4));
    out.summary.bytes += key.size() + value.size();
    out.items.emplace(std::move(key), std::move(value));
  }
  out.summary.items = out.items.size();
  return out;
}

std::size_t PgAdmin::Remove(const std::vector<IdDigest>& digests) {
  impl_->Writable("rm");
  return impl_->DeleteEach(digests, "DELETE FROM sessions WHERE id_hash = $1", {});
}

std::size_t PgAdmin::RemoveWhere(const std::vector<ItemMatch>& where) {
  if (where.empty()) throw std::invalid_argument("RemoveWhere needs at least one item to match");
  Impl& m = *impl_;
  m.Writable("logout");
  std::vector<Param> params;
  AddItems(params, where);
  const std::string holds = HoldsItems(where.size(), "s.id_hash", 1);
  std::size_t removed = 0;
  // A session regenerated between a scan and its delete has moved to another
  // key: the delete finds nothing, and the next scan finds it under its new
  // one. So scan again until a scan finds nothing: every session that held
  // the items in the last scan's snapshot is gone.
  for (int round = 0;; ++round) {
    // Find the sessions first, outside any write: items have no index on
    // key and value, and the scan holds no lock a request would wait for.
    pg::Result r = m.Query("SELECT s.id_hash FROM sessions s WHERE true" + holds, params);
    if (r.rows() == 0) return removed;
    if (round == kLogoutScans) {
      // Sessions that keep moving faster than we delete them (a client
      // regenerating in a loop): one statement deletes whatever matches its
      // snapshot. Under READ COMMITTED a row renamed while it runs is not
      // matched again in its new version, so a session regenerated at that
      // very moment, after four scans that each found it moved, survives
      // (SQLite's last delete, under the write lock, has no such gap).
      return removed + static_cast<std::size_t>(
                           m.Query("DELETE FROM sessions WHERE id_hash IN (SELECT s.id_hash FROM sessions s WHERE true" +
                                       holds + ")",
                                   params)
                               .affected());
    }
    std::vector<IdDigest> found;
    for (int i = 0; i < r.rows(); ++i) found.push_back(DigestAt(r, i, 0));
    if (m.opts.after_scan_for_testing) m.opts.after_scan_for_testing();
    // Then delete them by key, a batch per transaction, each only if it still matches.
    removed += m.DeleteEach(found, "DELETE FROM sessions WHERE id_hash = $1" + HoldsItems(where.size(), "$1", 2), where);
  }
}

std::size_t PgAdmin::CollectGarbage(std::int64_t now, std::size_t batch) {
  if (batch == 0) throw std::invalid_argument("CollectGarbage needs a batch of at least 1");
  Impl& m = *impl_;
  m.Writable("gc");
  // The servers' sweep (PgBackend::CollectGarbage): a batch per
  // transaction, skipping the rows a request holds.
  std::string sql = "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires <= " +
                    m.Now(1) + " LIMIT $2 FOR UPDATE SKIP LOCKED)";
  std::size_t total = 0;
  for (;;) {
    auto n = static_cast<std::size_t>(
        m.Query(sql, {Param::Int(now), Param::Int(static_cast<std::int64_t>(batch))}).affected());
    total += n;
    if (n < batch) return total;
  }
}

StoreStats PgAdmin::Stats(std::int64_t now) {
  Impl& m = *impl_;
  // One statement, one snapshot.
  pg::Result r = m.Query(
      "SELECT (SELECT count(*) FROM sessions), "
      "(SELECT count(*) FROM sessions WHERE expires > " + m.Now(1) + "), "
      "(SELECT min(created) FROM sessions WHERE expires > " + m.Now(1) + "), "
      "(SELECT count(*) FROM items), "
      "(SELECT coalesce(sum(length(key) + length(value)), 0)::bigint FROM items), "
      "(SELECT coalesce(max(version), 0) FROM sessiond_schema), "
      "(pg_total_relation_size('sessions') + pg_total_relation_size('items'))::bigint",
      {Param::Int(now)});
  StoreStats st;
  auto all = static_cast<std::size_t>(r.int64(0, 0));
  st.live = static_cast<std::size_t>(r.int64(0, 1));
  st.expired = all - std::min(all, st.live);
  if (!r.null(0, 2)) st.oldest = r.int64(0, 2);
  st.items = static_cast<std::size_t>(r.int64(0, 3));
  st.bytes = static_cast<std::size_t>(r.int64(0, 4));
  st.schema_version = static_cast<int>(r.int64(0, 5));
  st.file_bytes = r.int64(0, 6);
  return st;
}

std::vector<std::string> PgAdmin::Check(bool /*quick*/) {
  Impl& m = *impl_;
  std::vector<std::string> problems;
  // Each check on its own: one that fails must not hide the others. The
  // server keeps its own pages consistent (checksums, WAL); what can go
  // wrong here is what someone typed into psql.
  auto run = [&](auto check) {
    try {
      check();
    } catch (const StoreError& e) {
      problems.push_back(e.what());
    }
  };
  run([&] {
    int version = m.Version();
    if (version < kPgSchemaVersion)
      problems.push_back("schema version " + std::to_string(version) + " is older than this sessiond's (" +
                         std::to_string(kPgSchemaVersion) + "): sessiond serve migrates it when it starts");
  });
  run([&] {
    // The foreign key makes these impossible, unless it was dropped or disabled.
    auto orphans = m.Query("SELECT count(*) FROM items WHERE NOT EXISTS "
                           "(SELECT 1 FROM sessions s WHERE s.id_hash = items.id_hash)",
                           {})
                       .int64(0, 0);
    if (orphans)
      problems.push_back(std::to_string(orphans) +
                         " items belong to no session (DELETE FROM items WHERE id_hash NOT IN "
                         "(SELECT id_hash FROM sessions) removes them)");
  });
  run([&] {
    auto bad = m.Query("SELECT count(*) FROM sessions WHERE length(id_hash) != 32", {}).int64(0, 0);
    if (bad) problems.push_back(std::to_string(bad) + " sessions have an id_hash that is not a 32-byte digest");
  });
  return problems;
}

void PgAdmin::Backup(const std::string& /*path*/) {
  throw StoreError("sessiond backup copies SQLite files only; back up a PostgreSQL store with pg_dump "
                   "(pg_dump -Fc -t sessiond_schema -t sessions -t items DBNAME > FILE) or the server's "
                   "own backups",
                   0, false);
}

}  // namespace sessiond
