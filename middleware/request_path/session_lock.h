// Exclusive mode's lock (SESSION_MODE exclusive) as one request holds it:
// taken before the session is loaded, waited for within a bound, and
// released when the request ends, however it ends (the guard's destructor;
// on success the commit releases it in its own unit: SessionStore::CommitHolding).
// The lock itself is the store's (SessionStore::TryLock): one holder per
// session across every sessiond on the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace sessiond {

class SessionLock {
 public:
  // The lock of the first of `ids` (the cookie's well-formed ids, in the
  // order the load tries them) with a live session of `site` in `store`, held with a
  // lease of `lease` seconds. While another request holds it, tries again
  // (sooner when a request of this process releases a lock, else with a
  // pause that grows to 100 ms), for at most `wait`. No id with a live
  // session (a new visitor): a guard that holds nothing. Throws HttpError
  // 503 (with Retry-After) past `wait`, and StoreError.
  static SessionLock Take(SessionStore& store, const SiteScope& site, const std::vector<std::string_view>& ids,
                          std::int64_t lease, std::chrono::milliseconds wait);

  SessionLock(SessionLock&& other) noexcept;
  SessionLock& operator=(SessionLock&&) = delete;
  SessionLock(const SessionLock&) = delete;
  // Releases the lock if it is still held (a failed request); a release
  // that fails is logged, and the lease ends the lock anyway.
  ~SessionLock();

  bool held() const { return store_ != nullptr; }
  const std::string& owner() const { return owner_; }
  // After a commit that released the lock (CommitHolding, or a Fenced
  // one, where it is another's): the destructor does nothing.
  void Released();

 private:
  SessionLock() = default;
  SessionStore* store_ = nullptr;
  SiteScope site_;
  std::string id_, owner_;
};

}  // namespace sessiond
