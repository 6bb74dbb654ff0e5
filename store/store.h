// The session store interface: what the request path needs from storage, and
// nothing about HTTP. PolicyStore (session_store.h) implements it over every
// storage engine (backend.h); OpenStore (open.h) picks the engine.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "store/session.h"

namespace sessiond {

// The store could not do what was asked (I/O error, database busy past the
// busy timeout, corrupt file). Nothing was changed. `busy()` tells a caller
// that trying again later may succeed (HTTP 503 rather than 500).
class StoreError : public std::runtime_error {
 public:
  StoreError(const std::string& what, int code, bool busy, bool reported = false)
      : std::runtime_error(what), code_(code), busy_(busy), reported_(reported) {}
  int code() const { return code_; }
  bool busy() const { return busy_; }
  // The store has logged this already, once for all the calls it fails (a
  // database out of reach): a caller answers without a log line of its own.
  bool reported() const { return reported_; }

 private:
  int code_;
  bool busy_;
  bool reported_;
};

// A change set would make a session exceed one of its SessionLimits.
// Nothing was changed.
class LimitError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The timeouts a session lives by.
struct StoreTimeouts {
  std::int64_t idle = 20 * 60;        // seconds without a request before a session ends
  std::int64_t absolute = 24 * 3600;  // seconds after creation a session ends regardless
};

// The site a session belongs to (SESSION_SITE, route.h) and the timeouts its
// sessions live by there. A session belongs to one site: an id is known only
// on the site that issued it (the store keeps the digest of the site and the
// id, DigestOf), so an id of another site loads as nothing and a write makes
// a new session of this site. Default: the default site ("") under the
// store's own timeouts.
struct SiteScope {
  std::string site;  // "" the default site; else no ':' (route.h's site names)
  // This site's timeouts; nullopt: the store's. Never longer than the store's
  // (the process's bounds): a longer one is cut to them.
  std::optional<StoreTimeouts> timeouts;
};

// What a commit did, and which id the client must carry from now on.
struct CommitResult {
  enum class Outcome {
    Unchanged,    // nothing stored (no session and nothing to store, or nothing asked)
    Updated,      // the loaded session was changed or touched; its id stays
    Created,      // a new session was stored under `id`
    Regenerated,  // the session moved to the new `id`; the old one is dead
    Abandoned,    // the session was deleted, or was already gone; the client should drop its cookie
    // The loaded session no longer exists (another request regenerated or
    // abandoned it, or it expired, since Load); nothing was stored. Returned
    // only for a change set that would write (Set, Remove, Clear, Replace,
    // regenerate). The request's changes are lost: the caller must not
    // report them as saved, and must not send a cookie, because the request
    // that ended the session may have sent one that the client should keep
    // (a stale AJAX write after a login would otherwise log the user out).
    Gone,
  };
  Outcome outcome = Outcome::Unchanged;
  std::string id;  // set for Created and Regenerated
  // Updated: the commit refreshed the session's last access (the lazy touch,
  // at most once per touch interval): the session is in use, a moment to
  // renew what else ages with it (the cookie's Max-Age) at no extra cost.
  bool touched = false;
};

// Thread-safety: one instance per thread. Instances on the same store (in one
// process or several, on one machine or a farm's) may be used concurrently;
// the engine serialises writes (SQLite's file lock, PostgreSQL's row locks).
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // The live session with this id, or nullopt when the id is unknown,
  // abandoned or expired at `now` (unix seconds). Never writes sessions.
  // Throws StoreError when the store cannot be read.
  // `site`: the session's site and timeouts (the overloads without it: the
  // default site under the store's timeouts, as for every call below).
  virtual std::optional<Session> Load(std::string_view id, std::int64_t now, const SiteScope& site) = 0;
  std::optional<Session> Load(std::string_view id, std::int64_t now) { return Load(id, now, SiteScope{}); }

  // Applies `changes` to `loaded` (nullopt: the visitor has no session) in one
  // transaction, merging per key with whatever other commits did meanwhile.
  // A new session is created only for a visitor without one, and only when
  // there is something to store. When `loaded` has gone meanwhile, a change
  // set that writes returns Gone, an abandon returns Abandoned, and a read
  // returns Unchanged; none of them stores anything.
  // Also refreshes the last-access time when enough of the idle window has
  // passed. For a read (empty `changes`) that refresh is best effort: when it
  // cannot be written (busy, disk full, file deleted) it is logged and the
  // result is Unchanged, never an exception.
  // Throws LimitError or StoreError, in which case nothing was changed.
  // `loaded` came from Load with the same `site`; a new session is of `site`,
  // its expiry computed with the site's timeouts.
  virtual CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                              const SiteScope& site) = 0;
  CommitResult Commit(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now) {
    return Commit(loaded, changes, now, SiteScope{});
  }

  // Deletes up to `batch` sessions expired at `now`; returns how many.
  // Throws StoreError, in which case nothing was deleted.
  virtual std::size_t CollectGarbage(std::int64_t now, std::size_t batch) = 0;

  // For the metrics (--status-path); a store that cannot answer cheaply keeps
  // these defaults. Both never write, and throw StoreError.
  //
  // Sessions alive at `now`, counted without reading every session (the
  // expiry index), or nullopt when the store cannot count them so.
  virtual std::optional<std::int64_t> CountLive(std::int64_t /*now*/) { return std::nullopt; }
  // After Load() found nothing for `id`: whether the store still holds that
  // session, expired and not yet collected (rather than never issued,
  // abandoned or regenerated away).
  virtual bool HoldsExpired(std::string_view /*id*/, std::int64_t /*now*/, const SiteScope& /*site*/) {
    return false;
  }
  bool HoldsExpired(std::string_view id, std::int64_t now) { return HoldsExpired(id, now, SiteScope{}); }
};

}  // namespace sessiond
