// StoreBackend on one SQLite file: the embedded default. Schema and the
// queries an operator can run against it are in docs/inspecting.md ("The store").
// SQL and SQLite only: the session policy is PolicyStore's (store/session_store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "store/backend.h"

namespace sessiond {

struct StoreOptions;

// The expand steps of this build's own schema (PRAGMA user_version counts
// them); SqliteSchemaSteps().known() is the version this build writes.
inline constexpr int kSchemaVersion = 6;
// The version whose step gave items their type column.
inline constexpr int kSqliteItemTypesSince = 6;

class Db;
// This build's schema steps (backend.h), and a test's additions: the
// rolling-upgrade test's second build appends steps before any store opens
// (tests/tools/sessiond_next.cc); nothing else may change them.
const SchemaSteps& SqliteSchemaSteps();
SchemaSteps& SqliteSchemaStepsForTesting();
// The file's level: PRAGMA user_version, and sessiond_schema.required (0
// before schema version 3).
SchemaLevel ReadSqliteSchemaLevel(Db& db);

// The -wal file is truncated back to this size (PRAGMA journal_size_limit)
// when SQLite reuses it after a checkpoint; it may grow past it meanwhile.
inline constexpr std::int64_t kWalSizeLimit = 16 << 20;

// Instances on one file within a process (one device and inode, however
// its path is spelled) share their writes (group commit): concurrent Write() calls are run by one of their threads, the
// leader, in one transaction on its connection, each unit in a savepoint of
// its own (a unit that throws is undone alone), with one COMMIT and so one
// fsync for all; each caller returns when that COMMIT has. Across
// processes, SQLite's busy timeout decides.
//
// The file may be deleted or replaced while the backend is open. Load, Write
// and CollectGarbage first look at the path: when another file is there now
// (a backup moved into place), the backend reopens on it and logs one line.
// When nothing is there, reads are served from the file still open, and every
// write throws StoreError "database file <path> was deleted or replaced"
// (not busy) instead of being acknowledged into a file nobody will open again.
class SqliteBackend final : public StoreBackend {
 public:
  // Opens options.db, sets WAL mode and the pragmas (busy timeout,
  // synchronous), and migrates the schema to kSchemaVersion. Throws
  // StoreError: for a file of a newer version; for a read-only file
  // ("database file <path> is read-only"); for a directory where SQLite
  // cannot create the -wal and -shm files ("directory <dir> is not writable:
  // SQLite keeps <file>-wal and <file>-shm beside the database").
  explicit SqliteBackend(const StoreOptions& options);
  ~SqliteBackend() override;

  std::optional<Session> Load(const IdDigest& d, std::string_view id, std::int64_t now) override;
  void Write(const std::function<void(StoreWriter&)>& unit) override;
  // One batch in a transaction of its own. When writers of this process
  // are waiting for the write lock (queued, or their leader running), it
  // first waits until their leader has finished one transaction: a sweep's
  // batches and the writers' take turns, and a writer waits at most for one
  // batch of the sweep.
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  std::optional<std::int64_t> CountLive(std::int64_t now) override;
  bool Holds(const IdDigest& d) override;
  void RecordMember(const Member& member, std::int64_t now) override;
  void ForgetMember(std::string_view name) override;
  std::optional<Forwarding> Forwarded(const IdDigest& d, std::int64_t now) override;
  // One batch in a transaction of its own.
  std::size_t CollectForwards(std::int64_t now, std::size_t batch) override;

  // Test seams, per file: the one at `path` now. The next leader on
  // `path` waits, before it takes its batch, until `units` units are queued
  // (at most 64, the largest batch), so that a test can put them in one batch.
  static void GatherNextBatchForTesting(const std::string& path, std::size_t units);
  // Transactions the leaders on `path` have run so far.
  static std::uint64_t BatchesForTesting(const std::string& path);
  // Runs `hook` in each CollectGarbage batch on `path`, after its DELETE and
  // before its COMMIT (the write lock held); an empty function removes it.
  static void DuringGcBatchForTesting(const std::string& path, std::function<void()> hook);

  struct Conn;  // a connection and its prepared statements

 private:
  std::unique_ptr<Conn> conn_;
};

}  // namespace sessiond
