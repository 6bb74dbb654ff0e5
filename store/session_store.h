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

  using SessionStore::Commit;
  using SessionStore::HoldsExpired;
  using SessionStore::Load;
  using SessionStore::CommitHolding;
  using SessionStore::TryLock;
  using SessionStore::Unlock;

  // nullopt for an id that is not well formed, without asking the backend.
  // An id regenerated less than timeouts.grace ago loads the session under
  // its new id (Session::forwarded).
  std::optional<Session> Load(std::string_view id, std::int64_t now, const SiteScope& site) override;
  // One StoreBackend::Write (or, for a loaded session, one Change where the
  // backend offers it) per call that writes; none for a new visitor with
  // nothing to store, nor for a read whose last access is not due. With a
  // rotation grace, a regenerate is always a Write (its forward with it), and
  // a write that finds its session regenerated meanwhile is applied to the
  // session under the new id while the old id's grace lasts (a second unit).
  CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                      const SiteScope& site) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  std::optional<std::int64_t> CountLive(std::int64_t now) override;
  bool HoldsExpired(std::string_view id, std::int64_t now, const SiteScope& site) override;
  void RecordMember(const Member& member, std::int64_t now) override;
  void ForgetMember(std::string_view name) override;
  // Each one StoreBackend::Write (the lock's row beside the sessions).
  LockOutcome TryLock(std::string_view id, const SiteScope& site, std::string_view owner, std::int64_t lease,
                      std::int64_t now) override;
  void Unlock(std::string_view id, const SiteScope& site, std::string_view owner) override;
  // One StoreBackend::Write, never Change: the lock's check is in the unit.
  CommitResult CommitHolding(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                             const SiteScope& site, std::string_view owner) override;

  // Seconds after the recorded access before a read refreshes it: a tenth of the
  // idle window, so a session ends between 90% and 100% of it after its last use.
  // Measured on the store's clock: Session::now - Session::accessed. Of the
  // store's own timeouts; a site's: touch_interval(TimeoutsOf(site)).
  std::int64_t touch_interval() const { return touch_interval(timeouts_); }
  static std::int64_t touch_interval(const StoreTimeouts& t);

  // The timeouts `site`'s sessions live by: its own within the store's.
  StoreTimeouts TimeoutsOf(const SiteScope& site) const;

  StoreBackend& backend() { return *backend_; }

 private:
  // Commit without the rotation grace's second attempt.
  CommitResult CommitOnce(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                          const SiteScope& site);
  // The live session of `site` a regenerated `id` leads to while its grace
  // lasts, or nullopt.
  std::optional<Session> Follow(std::string_view id, std::int64_t now, std::string_view site,
                                const StoreTimeouts& timeouts);
  // Commit of a loaded session; `owner` non-null: under its lock (CommitHolding).
  CommitResult CommitLoaded(const Session& loaded, const ChangeSet& changes, std::int64_t now,
                            const SiteScope& site, const std::string_view* owner);

  std::unique_ptr<StoreBackend> backend_;
  StoreTimeouts timeouts_;
  SessionLimits limits_;
};

}  // namespace sessiond
