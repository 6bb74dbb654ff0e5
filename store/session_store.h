// The session policy, once for every storage engine: SessionStore (store.h)
// over a StoreBackend (backend.h). Limits, the lazy refresh of the last
// access, a session gone since it was loaded, regenerate and abandon are
// decided here; the backend only runs the reads and units of work they need.
#pragma once

#include <memory>

#include "store/backend.h"
#include "store/store.h"

namespace sessiond {

// Thread-safety: one instance per thread, as its backend.
class PolicyStore final : public SessionStore {
 public:
  PolicyStore(std::unique_ptr<StoreBackend> backend, StoreTimeouts timeouts, SessionLimits limits);
  ~PolicyStore() override;

  // nullopt for an id that is not well formed, without asking the backend.
  std::optional<Session> Load(std::string_view id, std::int64_t now) override;
  // One StoreBackend::Write (or, for a loaded session, one Change where the
  // backend offers it) per call that writes; none for a new visitor with
  // nothing to store, nor for a read whose last access is not due.
  CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes,
                      std::int64_t now) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  std::optional<std::int64_t> CountLive(std::int64_t now) override;
  bool HoldsExpired(std::string_view id, std::int64_t now) override;
  // Each one StoreBackend::Write (the lock's row beside the sessions).
  LockOutcome TryLock(std::string_view id, std::string_view owner, std::int64_t lease, std::int64_t now) override;
  void Unlock(std::string_view id, std::string_view owner) override;
  // One StoreBackend::Write, never Change: the lock's check is in the unit.
  CommitResult CommitHolding(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                             std::string_view owner) override;

  // Seconds after the recorded access before a read refreshes it: a tenth of the
  // idle window, so a session ends between 90% and 100% of it after its last use.
  // Measured on the store's clock: Session::now - Session::accessed.
  std::int64_t touch_interval() const;

  StoreBackend& backend() { return *backend_; }

 private:
  // Commit of a loaded session; `owner` non-null: under its lock (CommitHolding).
  CommitResult CommitLoaded(const Session& loaded, const ChangeSet& changes, std::int64_t now,
                            const std::string_view* owner);

  std::unique_ptr<StoreBackend> backend_;
  StoreTimeouts timeouts_;
  SessionLimits limits_;
};

}  // namespace sessiond
