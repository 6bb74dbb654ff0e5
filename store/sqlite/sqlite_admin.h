// SessionAdmin on the SQLite file that SqliteBackend serves from, safe to use
// while sessiond runs on it: reads take SQLite's WAL snapshots and never block
// the server; deletes go in short BEGIN IMMEDIATE transactions.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "store/admin.h"

namespace sessiond {

struct SqliteAdminOptions {
  std::string path;            // an existing database file; never created
  int busy_timeout_ms = 5000;  // how long a delete waits for the server's write lock
  // false: opened read-only (SQLITE_OPEN_READONLY); Remove, RemoveWhere and
  // CollectGarbage then throw StoreError.
  bool writable = false;
  // Test seam: RemoveWhere calls it after each scan for the matching
  // sessions, before deleting what that scan found.
  std::function<void()> after_scan_for_testing;
  // Test seam: CollectGarbage calls it in each batch's transaction, after
  // its DELETE and before its COMMIT (the write lock held).
  std::function<void()> during_gc_batch_for_testing;
};

class SqliteAdmin final : public SessionAdmin {
 public:
  // Opens the file. Throws StoreError when it is missing, not a database, not
  // a sessiond store (schema version 0), or of a newer schema version than
  // this build knows. An older version is used as it is, never migrated: the
  // queries here work on every version so far.
  explicit SqliteAdmin(const SqliteAdminOptions& options);
  ~SqliteAdmin() override;

  std::vector<SessionSummary> List(const ListQuery& query, std::int64_t now) override;
  std::vector<IdDigest> FindByPrefix(std::string_view prefix, std::size_t limit) override;
  std::optional<SessionDetail> Get(const IdDigest& digest) override;
  std::size_t Remove(const std::vector<IdDigest>& digests) override;
  std::size_t RemoveWhere(const std::vector<ItemMatch>& where) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  StoreStats Stats(std::int64_t now) override;
  std::vector<std::string> Check(bool quick) override;
  // VACUUM INTO: a compacted copy in rollback-journal mode (sessiond puts it
  // back in WAL mode when it serves from it), synced to disk.
  void Backup(const std::string& path) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond
