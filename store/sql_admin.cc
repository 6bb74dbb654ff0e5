#include "store/sql_admin.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "store/liveness.h"

namespace sessiond {
namespace {

// Sessions deleted per transaction by Remove and RemoveWhere: the server's
// writers (SQLite), or a request on a session in the batch (PostgreSQL),
// wait at most for one such batch, as for the collectors' own batches.
constexpr std::size_t kDeleteBatch = 500;

// Scans RemoveWhere makes, each followed by deletes by key, before it
// deletes by the items themselves in one transaction (see there).
constexpr int kLogoutScans = 4;

// The digest in `column`. A row typed into the sqlite3 shell or psql may hold
// something shorter or longer: it is cut or padded with zeros (Check reports it).
IdDigest DigestAt(const SqlRow& row, int column) {
  std::string bytes = row.Bytes(column);
  IdDigest d{};
  std::copy_n(bytes.begin(), std::min(bytes.size(), d.size()), d.begin());
  return d;
}

void AddItems(std::vector<SqlParam>& params, const std::vector<ItemMatch>& where) {
  for (const ItemMatch& m : where) {
    params.push_back(SqlParam::Bytes(m.key));
    params.push_back(SqlParam::Bytes(m.value));
  }
}

}  // namespace

SqlAdmin::SqlAdmin(std::unique_ptr<AdminEngine> engine, std::function<void()> after_scan_for_testing)
    : engine_(std::move(engine)), after_scan_for_testing_(std::move(after_scan_for_testing)) {}

void SqlAdmin::Writable(const char* what) const {
  if (!engine_->writable())
    throw StoreError(std::string(what) + ": the store was opened for reading only", 0, false);
}

std::string SqlAdmin::HoldsItems(std::size_t matches, const std::string& session, int first) const {
  std::string sql;
  for (std::size_t i = 0; i < matches; ++i) {
    int k = first + 2 * static_cast<int>(i);
    sql += " AND EXISTS (SELECT 1 FROM items w WHERE w.id_hash = " + session + " AND w.key = " + engine_->Param(k) +
           " AND w.value = " + engine_->Param(k + 1) + ")";
  }
  return sql;
}

std::vector<SessionSummary> SqlAdmin::List(const ListQuery& q, std::int64_t now) {
  AdminEngine& e = *engine_;
  std::string sql = "SELECT s.id_hash, s.created, s.accessed, s.expires, count(i.key), coalesce(sum(" +
                    e.ByteLength("i.key") + " + " + e.ByteLength("i.value") +
                    "), 0) FROM sessions s LEFT JOIN items i ON i.id_hash = s.id_hash WHERE 1 = 1";
  if (q.which == ListQuery::Which::Live) sql += " AND " + sql::Unexpired("s.", e.Now(1));
  if (q.which == ListQuery::Which::Expired) sql += " AND " + sql::Expired("s.", e.Now(1));
  sql += HoldsItems(q.where.size(), "s.id_hash", 2);
  sql += " GROUP BY s.id_hash ORDER BY s.created DESC, s.id_hash";
  int limit_at = 2 + 2 * static_cast<int>(q.where.size());
  if (q.limit) sql += " LIMIT " + e.Param(limit_at);
  std::vector<SqlParam> params{SqlParam::Int(now)};
  AddItems(params, q.where);
  if (q.limit) params.push_back(SqlParam::Int(static_cast<std::int64_t>(q.limit)));
  // One statement: one snapshot, read whole before anything is printed.
  std::vector<SessionSummary> out;
  e.Query(sql, params, [&](const SqlRow& r) {
    SessionSummary row;
    row.digest = DigestAt(r, 0);
    row.created = r.Int(1);
    row.accessed = r.Int(2);
    row.expires = r.Int(3);
    row.items = static_cast<std::size_t>(r.Int(4));
    row.bytes = static_cast<std::size_t>(r.Int(5));
    out.push_back(row);
  });
  return out;
}

std::vector<IdDigest> SqlAdmin::FindByPrefix(std::string_view prefix, std::size_t limit) {
  AdminEngine& e = *engine_;
  DigestRange range = PrefixRange(prefix);  // throws for what is not a prefix
  std::string sql = "SELECT id_hash FROM sessions WHERE id_hash >= " + e.Param(1);
  if (range.bounded) sql += " AND id_hash < " + e.Param(2);  // else parameter 2 goes unused
  sql += " ORDER BY id_hash LIMIT " + e.Param(3);
  std::vector<IdDigest> out;
  e.Query(sql,
          {SqlParam::Blob(range.low), SqlParam::Blob(range.high), SqlParam::Int(static_cast<std::int64_t>(limit))},
          [&](const SqlRow& r) { out.push_back(DigestAt(r, 0)); });
  return out;
}

std::optional<SessionDetail> SqlAdmin::Get(const IdDigest& digest) {
  AdminEngine& e = *engine_;
  std::optional<SessionDetail> out;
  // A store an older sessiond serves (not yet expanded) has no type column.
  const std::string type = e.SchemaVersion() >= e.ItemTypesSince() ? "i.type" : "'string'";
  e.Query("SELECT s.created, s.accessed, s.expires, i.key, i.value, " + type + " FROM sessions s "
          "LEFT JOIN items i ON i.id_hash = s.id_hash WHERE s.id_hash = " +
              e.Param(1),
          {SqlParam::Blob(digest)}, [&](const SqlRow& r) {
            if (!out) {
              out.emplace();
              out->summary.digest = digest;
              out->summary.created = r.Int(0);
              out->summary.accessed = r.Int(1);
              out->summary.expires = r.Int(2);
            }
            if (r.Null(3)) return;  // a session without items
            std::string key = r.Bytes(3), value = r.Bytes(4);
            out->summary.bytes += key.size() + value.size();
            if (r.Bytes(5) == "json") out->json.insert(key);
            out->items.emplace(std::move(key), std::move(value));
          });
  if (out) out->summary.items = out->items.size();
  return out;
}

std::size_t SqlAdmin::DeleteEach(const std::vector<IdDigest>& digests, const std::string& sql,
                                 const std::vector<ItemMatch>& where) {
  std::size_t removed = 0;
  for (std::size_t at = 0; at < digests.size(); at += kDeleteBatch) {
    std::vector<std::vector<SqlParam>> each;
    for (std::size_t i = at; i < std::min(digests.size(), at + kDeleteBatch); ++i) {
      std::vector<SqlParam>& params = each.emplace_back();
      params.push_back(SqlParam::Blob(digests[i]));
      AddItems(params, where);
    }
    removed += engine_->WriteEach(sql, each);
  }
  return removed;
}

std::size_t SqlAdmin::Remove(const std::vector<IdDigest>& digests) {
  Writable("rm");
  return DeleteEach(digests, "DELETE FROM sessions WHERE id_hash = " + engine_->Param(1), {});
}

std::size_t SqlAdmin::RemoveWhere(const std::vector<ItemMatch>& where) {
  if (where.empty()) throw std::invalid_argument("RemoveWhere needs at least one item to match");
  Writable("logout");
  AdminEngine& e = *engine_;
  std::vector<SqlParam> params;
  AddItems(params, where);
  const std::string holds = HoldsItems(where.size(), "s.id_hash", 1);
  // Find the sessions first, outside any write: items have no index on key
  // and value, and a scan inside a write transaction would hold the
  // server's writers (SQLite's write lock) for as long as it takes.
  const std::string find = "SELECT s.id_hash FROM sessions s WHERE 1 = 1" + holds;
  // Then delete them by key, a batch per transaction, each only if it still matches.
  const std::string del = "DELETE FROM sessions WHERE id_hash = " + e.Param(1) + HoldsItems(where.size(), e.Param(1), 2);
  std::size_t removed = 0;
  // A session regenerated between a scan and its delete has moved to another
  // key: the delete finds nothing, and the next scan finds it under its new
  // one. So scan again until a scan finds nothing: every session that held
  // the items when the last scan read its snapshot is gone.
  for (int round = 0;; ++round) {
    std::vector<IdDigest> found;
    e.Query(find, params, [&](const SqlRow& r) { found.push_back(DigestAt(r, 0)); });
    if (found.empty()) return removed;
    if (round == kLogoutScans) {
      // Sessions that keep moving faster than we delete them (a client
      // regenerating in a loop): one delete of whatever matches. On SQLite
      // it holds the write lock, which no regenerate can slip past. On
      // PostgreSQL, under READ COMMITTED, a row renamed while it runs is not
      // matched again in its new version, so a session regenerated at that
      // very moment, after four scans that each found it moved, survives.
      return removed + e.WriteEach("DELETE FROM sessions WHERE id_hash IN (SELECT s.id_hash FROM sessions s "
                                   "WHERE 1 = 1" + holds + ")",
                                   {params});
    }
    if (after_scan_for_testing_) after_scan_for_testing_();
    removed += DeleteEach(found, del, where);
  }
}

std::size_t SqlAdmin::CollectGarbage(std::int64_t now, std::size_t batch) {
  if (batch == 0) throw std::invalid_argument("CollectGarbage needs a batch of at least 1");
  Writable("gc");
  // The servers' sweep, a batch per transaction: a writer waiting for the
  // store gets its turn between two of them.
  std::size_t total = 0;
  for (;;) {
    std::size_t n = engine_->SweepBatch(now, batch);
    total += n;
    if (n < batch) return total;
  }
}

StoreStats SqlAdmin::Stats(std::int64_t now) {
  AdminEngine& e = *engine_;
  const std::string live = sql::Unexpired("", e.Now(1)), bytes = e.ByteLength("key") + " + " + e.ByteLength("value");
  StoreStats st;
  // One statement, one snapshot.
  e.Query("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM sessions WHERE " + live +
              "), (SELECT min(created) FROM sessions WHERE " + live +
              "), (SELECT count(*) FROM items), (SELECT coalesce(sum(" + bytes + "), 0) FROM items)",
          {SqlParam::Int(now)}, [&](const SqlRow& r) {
            auto all = static_cast<std::size_t>(r.Int(0));
            st.live = static_cast<std::size_t>(r.Int(1));
            st.expired = all - std::min(all, st.live);
            if (!r.Null(2)) st.oldest = r.Int(2);
            st.items = static_cast<std::size_t>(r.Int(3));
            st.bytes = static_cast<std::size_t>(r.Int(4));
          });
  st.schema_version = e.SchemaVersion();
  e.AddSizes(st);
  UpgradeStatus up = Upgrade(now);
  st.schema_required = up.level.required;
  st.members = std::move(up.members);
  return st;
}

UpgradeStatus SqlAdmin::Upgrade(std::int64_t now) {
  AdminEngine& e = *engine_;
  UpgradeStatus up;
  up.level = e.Level();
  up.known = e.Steps().known();
  for (const ContractStep& step : e.Steps().contract)
    if (step.needs > up.level.required) up.pending.push_back(step.needs);
  if (!e.HasMembers()) return up;
  e.Query("SELECT member, release, schema, started, seen, seen > " + e.Now(1) + " - " + std::to_string(kSeenWithin) +
              " FROM sessiond_members ORDER BY member",
          {SqlParam::Int(now)}, [&](const SqlRow& r) {
            MemberStatus m;
            m.member.name = r.Bytes(0);
            m.member.release = r.Bytes(1);
            m.member.schema = static_cast<int>(r.Int(2));
            m.member.started = r.Int(3);
            m.member.seen = r.Int(4);
            m.running = r.Int(5) != 0;
            up.members.push_back(std::move(m));
          });
  return up;
}

FinishResult SqlAdmin::Finish(std::int64_t now) {
  AdminEngine& e = *engine_;
  Writable("migrate --finish");
  UpgradeStatus up = Upgrade(now);
  FinishResult result;
  auto refuse = [&](std::string why) {
    result.outcome = FinishResult::Outcome::Refused;
    result.why = std::move(why);
    return result;
  };
  if (up.level.version > up.known)
    return refuse("a newer sessiond expanded the store to schema version " + std::to_string(up.level.version) +
                  " (this one knows " + std::to_string(up.known) + "): finish with that sessiond");
  if (up.pending.empty()) return result;  // Nothing
  const int need = *std::max_element(up.pending.begin(), up.pending.end());
  if (up.level.version < need)
    return refuse("the store is at schema version " + std::to_string(up.level.version) +
                  ": start this version's sessiond serve on it first (it expands the store to " +
                  std::to_string(up.known) + ")");
  std::string older;
  for (const MemberStatus& m : up.members)
    if (m.running && m.member.schema < need)
      older += (older.empty() ? "" : ", ") + m.member.name + " (" + m.member.release + ", schema " +
               std::to_string(m.member.schema) + ")";
  const std::string in_the_way = "older sessionds are running: upgrade or stop them first, then run it again; "
                                 "one that was killed counts until it has not been seen for " +
                                 std::to_string(kSeenWithin) + " s";
  if (!older.empty()) return refuse(older + ": " + in_the_way);
  std::vector<std::string> sql;
  for (const ContractStep& step : e.Steps().contract)
    if (step.needs > up.level.required) sql.push_back(step.sql);
  // Checked again inside the transaction: another migrate --finish that
  // finished meanwhile (its steps must not run twice), a member that
  // started meanwhile.
  const std::string finished = "finished meanwhile by another sessiond migrate --finish";
  const std::string meanwhile = "an older sessiond started meanwhile: " + in_the_way;
  try {
    e.Contract(sql, need,
               {{"SELECT count(*) FROM sessiond_schema WHERE required >= " + e.Param(2), finished},
                {"SELECT count(*) FROM sessiond_members WHERE schema < " + e.Param(2) + " AND seen > " + e.Now(1) +
                     " - " + std::to_string(kSeenWithin),
                 meanwhile}},
               {SqlParam::Int(now), SqlParam::Int(need)});
  } catch (const StoreError& ex) {
    if (ex.busy()) throw;
    if (ex.what() == finished) return result;  // Nothing: the steps ran once, by the other
    if (ex.what() != meanwhile) throw;
    return refuse(meanwhile);
  }
  result.outcome = FinishResult::Outcome::Finished;
  result.required = need;
  result.steps = sql.size();
  return result;
}

std::vector<std::string> SqlAdmin::Check(bool quick) {
  AdminEngine& e = *engine_;
  std::vector<std::string> problems;
  // Each check on its own: a corrupt page that fails one must not hide the others.
  auto run = [&](auto check) {
    try {
      check();
    } catch (const StoreError& ex) {
      problems.push_back(ex.what());
    }
  };
  auto count = [&](const std::string& sql) {
    std::int64_t n = 0;
    e.Query(sql, {}, [&](const SqlRow& r) { n = r.Int(0); });
    return n;
  };
  run([&] { e.CheckStorage(quick, problems); });
  run([&] {
    int version = e.SchemaVersion(), known = e.KnownSchemaVersion();
    if (version < known)
      problems.push_back("schema version " + std::to_string(version) + " is older than this sessiond's (" +
                         std::to_string(known) + "): sessiond serve migrates it when it starts");
    e.CheckSchema(version, problems);
  });
  run([&] {
    // The foreign key makes these impossible, unless it was dropped or
    // disabled (SQLite's is off in the sqlite3 shell).
    auto orphans =
        count("SELECT count(*) FROM items WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id_hash = items.id_hash)");
    if (orphans)
      problems.push_back(std::to_string(orphans) +
                         " items belong to no session (DELETE FROM items WHERE id_hash NOT IN "
                         "(SELECT id_hash FROM sessions) removes them)");
  });
  run([&] {
    auto bad = count("SELECT count(*) FROM sessions WHERE " + e.NotADigest());
    if (bad) problems.push_back(std::to_string(bad) + " sessions have an id_hash that is not a 32-byte digest");
  });
  return problems;
}

void SqlAdmin::Backup(const std::string& path) { engine_->Backup(path); }

}  // namespace sessiond
