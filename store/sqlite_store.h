// SessionStore on one SQLite file: the embedded default. Schema and the
// queries an operator can run against it are in the README ("The store").
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace sessiond {

struct SqliteOptions {
  std::string path;                         // the database file; created 0600 if missing
  std::int64_t idle_timeout = 20 * 60;      // seconds without a request before a session ends
  std::int64_t absolute_timeout = 24 * 3600;  // seconds after creation a session ends regardless
  int busy_timeout_ms = 5000;               // how long to wait for another writer before StoreError
  // PRAGMA synchronous: "FULL" (default; survives power loss), "NORMAL" (survives
  // a crash of sessiond, may lose the last commits on power loss), "EXTRA".
  std::string synchronous = "FULL";
  SessionLimits limits;
};

// The schema version this build writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 2;

// Instances on one file within a process queue for writes on a shared mutex;
// across processes, SQLite's busy timeout decides.
//
// The file may be deleted or replaced while the store is open. Load, Commit
// and CollectGarbage first look at the path: when another file is there now
// (a backup moved into place), the store reopens on it and logs one line.
// When nothing is there, reads are served from the file still open, and every
// write throws StoreError "database file <path> was deleted or replaced"
// (not busy) instead of being acknowledged into a file nobody will open again.
class SqliteStore final : public SessionStore {
 public:
  // Opens the file, sets WAL mode and the pragmas, and migrates the schema to
  // kSchemaVersion. Throws StoreError: for a file of a newer version; for a
  // read-only file ("database file <path> is read-only"); for a directory
  // where SQLite cannot create the -wal and -shm files ("directory <dir> is
  // not writable: SQLite keeps <file>-wal and <file>-shm beside the database").
  explicit SqliteStore(const SqliteOptions& options);
  ~SqliteStore() override;

  std::optional<Session> Load(std::string_view id, std::int64_t now) override;
  CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes,
                      std::int64_t now) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  std::optional<std::int64_t> CountLive(std::int64_t now) override;
  bool HoldsExpired(std::string_view id, std::int64_t now) override;

  // Seconds after the recorded access before a read refreshes it: a tenth of the
  // idle window, so a session ends between 90% and 100% of it after its last use.
  std::int64_t touch_interval() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond
