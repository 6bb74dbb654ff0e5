// SessionAdmin on the PostgreSQL store that PgBackend serves from, safe to
// use while sessionds run on it: every read is one statement (one snapshot),
// deletes go in short transactions of a batch each, and garbage collection
// skips the rows a request holds, as the servers' own collectors do.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "store/admin.h"

namespace sessiond {

namespace pg {
class Conn;
}

struct PgAdminOptions {
  std::string uri;
  int timeout_ms = 5000;  // as PgOptions::timeout_ms
  // false: every transaction is read-only (the server refuses writes), and
  // Remove, RemoveWhere and CollectGarbage throw StoreError.
  bool writable = false;
  // `now` is the database server's clock, as the servers' (PgOptions); the
  // `now` the commands pass is ignored. False: theirs is used (tests).
  bool server_clock = true;
  // Test seam: RemoveWhere calls it after each scan for the matching
  // sessions, before deleting what that scan found.
  std::function<void()> after_scan_for_testing;
};

class PgAdmin final : public SessionAdmin {
 public:
  // Connects. Throws StoreError when it cannot, when the database holds no
  // sessiond schema (sessiond serve creates it), or a newer one than this
  // build knows. An older one is used as it is, never migrated.
  explicit PgAdmin(const PgAdminOptions& options);
  ~PgAdmin() override;

  std::vector<SessionSummary> List(const ListQuery& query, std::int64_t now) override;
  std::vector<IdDigest> FindByPrefix(std::string_view prefix, std::size_t limit) override;
  std::optional<SessionDetail> Get(const IdDigest& digest) override;
  std::size_t Remove(const std::vector<IdDigest>& digests) override;
  std::size_t RemoveWhere(const std::vector<ItemMatch>& where) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  // file_bytes: the tables' and their indexes' size on the server
  // (pg_total_relation_size); free_bytes and wal_bytes: 0.
  StoreStats Stats(std::int64_t now) override;
  // The schema version, items without a session, malformed digests.
  std::vector<std::string> Check(bool quick) override;
  // Always throws StoreError: pg_dump makes a PostgreSQL store's backups.
  void Backup(const std::string& path) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond
