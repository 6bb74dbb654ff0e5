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

  // nullopt for an id that is not well formed, without asking the backend.
  std::optional<Session> Load(std::string_view id, std::int64_t now, const SiteScope& site) override;
  // One StoreBackend::Write (or, for a loaded session, one Change where the
  // backend offers it) per call that writes; none for a new visitor with
  // nothing to store, nor for a read whose last access is not due.
  CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                      const SiteScope& site) override;
  std::size_t CollectGarbage(std::int64_t now, std::size_t batch) override;
  std::optional<std::int64_t> CountLive(std::int64_t now) override;
  bool HoldsExpired(std::string_view id, std::int64_t now, const SiteScope& site) override;

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
  std::unique_ptr<StoreBackend> backend_;
  StoreTimeouts timeouts_;
  SessionLimits limits_;
};

}  // namespace sessiond
