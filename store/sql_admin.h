// The operator's commands' logic (SessionAdmin, admin.h) written once for
// every SQL engine: the queries, the batching of deletes, logout's rounds of
// scans, the stats and the checks every store shares. Below it, an engine
// supplies only AdminEngine: how it writes parameters and byte lengths, how
// it runs a statement and a transaction of them, and what only it has (its
// schema version, its file's size and integrity, its backups). A third
// engine implements AdminEngine and derives its admin from SqlAdmin, as
// sqlite/sqlite_admin.h and postgres/pg_admin.h do.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/admin.h"

namespace sessiond {

// A statement's parameter. The bytes are viewed: they must outlive the call.
struct SqlParam {
  enum class Kind {
    Int,    // a 64-bit integer
    Blob,   // bytes that are always a blob (digests, digest ranges)
    Bytes,  // an item's key or value, bound as the engine stores items (SQLite: TEXT when UTF-8)
  };
  Kind kind = Kind::Int;
  std::int64_t number = 0;
  std::string_view bytes;

  static SqlParam Int(std::int64_t v) { return {Kind::Int, v, {}}; }
  static SqlParam Blob(std::string_view b) { return {Kind::Blob, 0, b}; }
  static SqlParam Blob(const IdDigest& d) {
    return Blob(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  }
  static SqlParam Bytes(std::string_view b) { return {Kind::Bytes, 0, b}; }
};

// One row of a result, columns by position from 0.
class SqlRow {
 public:
  virtual ~SqlRow() = default;
  virtual bool Null(int column) const = 0;
  virtual std::int64_t Int(int column) const = 0;
  virtual std::string Bytes(int column) const = 0;
};

// What an engine gives SqlAdmin. Thread-safety: as SessionAdmin's, one
// instance per thread. Every method throws StoreError when the store fails.
class AdminEngine {
 public:
  virtual ~AdminEngine() = default;

  // The dialect.
  // Parameter `n` (from 1) in a statement: "?n" or "$n".
  virtual std::string Param(int n) const = 0;
  // `now` in a statement: parameter `n`, or the database server's clock
  // (the parameter is then passed and not used).
  virtual std::string Now(int n) const = 0;
  // The length in bytes of a key or value column.
  virtual std::string ByteLength(std::string_view column) const = 0;
  // The condition a sessions row's id_hash is not a 32-byte digest.
  virtual std::string NotADigest() const = 0;

  // The mechanics.
  // Runs one statement (one snapshot) and calls `row` for each of its rows.
  // params[i] is parameter i + 1; those beyond what the statement names
  // are not used.
  virtual void Query(const std::string& sql, const std::vector<SqlParam>& params,
                     const std::function<void(const SqlRow&)>& row) = 0;
  // Runs `sql` once per entry of `each`, all in one write transaction that
  // the server's writers wait for at most; returns the rows changed.
  virtual std::size_t WriteEach(const std::string& sql, const std::vector<std::vector<SqlParam>>& each) = 0;
  // One batch of the sweep (sql::SweepExpired), in a transaction of its own,
  // as the server's collectors run it; returns how many it deleted.
  virtual std::size_t SweepBatch(std::int64_t now, std::size_t batch) = 0;
  // Whether the instance was opened to write; SqlAdmin refuses writes before
  // trying them when it was not.
  virtual bool writable() const = 0;

  // What only the engine has.
  virtual int SchemaVersion() = 0;      // the stored schema's
  virtual int KnownSchemaVersion() const = 0;  // the one this build writes
  // The schema version that gave items their type column (store/session.h
  // ItemType); a store below it holds strings only.
  virtual int ItemTypesSince() const = 0;
  // StoreStats::file_bytes, free_bytes and wal_bytes.
  virtual void AddSizes(StoreStats& stats) = 0;
  // Adds the problems of the storage itself, one line each (corrupt pages),
  // found by a full check or a quick one; Check reports them first.
  virtual void CheckStorage(bool quick, std::vector<std::string>& problems) = 0;
  // Adds the problems of a schema of this version beyond its version number
  // (a missing trigger).
  virtual void CheckSchema(int version, std::vector<std::string>& problems) = 0;
  virtual void Backup(const std::string& path) = 0;

  // Rolling upgrades (backend.h): the stored level, this build's steps, and
  // whether the schema has the members table yet.
  virtual SchemaLevel Level() = 0;
  virtual const SchemaSteps& Steps() const = 0;
  virtual bool HasMembers() = 0;
  // In one write transaction that also keeps sessionds from starting or
  // migrating meanwhile (and another Contract: two `migrate --finish` at
  // once): runs each check's `sql` (a count, with `params`) in order and
  // throws StoreError (not busy) with its `refused` at the first that is not
  // 0; else runs each of `steps` and sets the required version to `required`.
  struct Check {
    std::string sql, refused;
  };
  virtual void Contract(const std::vector<std::string>& steps, int required, const std::vector<Check>& checks,
                        const std::vector<SqlParam>& params) = 0;
};

// SessionAdmin over an engine. An engine's admin derives from it and gives
// it its AdminEngine.
class SqlAdmin : public SessionAdmin {
 public:
  std::vector<SessionSummary> List(const ListQuery& query, std::int64_t now) override;
  std::vector<IdDigest> FindByPrefix(std::string_view prefix, std::size_t limit) override;
  std::optional<SessionDetail> Get(const IdDigest& digest) override;
  std::size_t Remove(const std::vector<IdDigest>& digests) override;
  std::size_t RemoveWhere(const std::vector<ItemMatch>& where) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  StoreStats Stats(std::int64_t now) override;
  std::vector<std::string> Check(bool quick) override;
  void Backup(const std::string& path) override;
  UpgradeStatus Upgrade(std::int64_t now) override;
  FinishResult Finish(std::int64_t now) override;

 protected:
  // `after_scan_for_testing`: RemoveWhere calls it after each scan for the
  // matching sessions, before deleting what that scan found (may be empty).
  SqlAdmin(std::unique_ptr<AdminEngine> engine, std::function<void()> after_scan_for_testing);

 private:
  // Throws StoreError naming `what` when the engine was opened read-only.
  void Writable(const char* what) const;
  // " AND EXISTS (...)" per match: the session `session` (an SQL expression)
  // holds that item; keys and values are parameters `first`, `first` + 1...
  std::string HoldsItems(std::size_t matches, const std::string& session, int first) const;
  // Deletes by `sql` once per digest (its first parameter), each followed by
  // the items of `where`, a batch per transaction; returns how many.
  std::size_t DeleteEach(const std::vector<IdDigest>& digests, const std::string& sql,
                         const std::vector<ItemMatch>& where);

  std::unique_ptr<AdminEngine> engine_;
  std::function<void()> after_scan_for_testing_;
};

}  // namespace sessiond
