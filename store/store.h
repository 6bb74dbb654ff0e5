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

// The store's schema needs a newer sessiond than this one (backend.h,
// RefuseUnusableSchema): a deployment problem, which no retry mends.
class SchemaError : public StoreError {
 public:
  SchemaError(const std::string& what, int code) : StoreError(what, code, false) {}
};

// A change set would make a session exceed one of its SessionLimits.
// Nothing was changed.
class LimitError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A sessiond serve of a farm (or one of several processes on one SQLite
// file), as the store records it: at start, then every kHeartbeat, and
// removed when it stops. `sessiond stats` lists them; `sessiond migrate
// --finish` refuses while one of an older schema was seen within kSeenWithin.
struct Member {
  std::string name;     // host:pid:tag (ThisMember, collector.h)
  std::string release;  // sessiond's version
  int schema = 0;       // the schema version it knows
  std::int64_t started = 0, seen = 0;  // unix seconds (the database server's clock on PostgreSQL)
};
inline constexpr std::int64_t kHeartbeat = 30;
inline constexpr std::int64_t kSeenWithin = 4 * kHeartbeat;
// A member not seen for this long is forgotten (a machine that went away).
inline constexpr std::int64_t kForgetAfter = 24 * 3600;

// The timeouts a session lives by.
struct StoreTimeouts {
  std::int64_t idle = 20 * 60;        // seconds without a request before a session ends
  std::int64_t absolute = 24 * 3600;  // seconds after creation a session ends regardless
  // Rotation grace (--regenerate-grace): seconds after a regenerate during
  // which the old id still leads to the session (a forward); 0: none.
  std::int64_t grace = 10;
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
    // The loaded session was changed or touched; its id stays, unless `id`
    // is set: the session had been regenerated since it was loaded, and the
    // changes landed in it under its new id during the old id's rotation
    // grace (StoreTimeouts::grace). The client must carry `id` from now on.
    Updated,
    Created,      // a new session was stored under `id`
    Regenerated,  // the session moved to the new `id`; the old one is dead once its grace ends
    Abandoned,    // the session was deleted, or was already gone; the client should drop its cookie
    // The loaded session no longer exists (another request regenerated or
    // abandoned it, or it expired, since Load; regenerated it: only past the
    // old id's rotation grace, or with none); nothing was stored. Returned
    // only for a change set that would write (Set, Remove, Clear, Replace,
    // regenerate). The request's changes are lost: the caller must not
    // report them as saved, and must not send a cookie, because the request
    // that ended the session may have sent one that the client should keep
    // (a stale AJAX write after a login would otherwise log the user out).
    Gone,
    // A commit under exclusive mode's lock (CommitHolding) whose lock the
    // request no longer held: its lease ended (and another request may have
    // taken it and stored newer work). Nothing was stored.
    Fenced,
  };
  Outcome outcome = Outcome::Unchanged;
  std::string id;  // set for Created and Regenerated, and for an Updated that followed a regenerate
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
  // abandoned or expired at `now` (unix seconds). An id regenerated within
  // its rotation grace loads the session under its new id, and says so
  // (Session::forwarded). Never writes sessions.
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

  // Records `member` as running at `now`, with the schema version this build
  // knows, and forgets members not seen for kForgetAfter; ForgetMember
  // removes one that stops. Both throw StoreError. A store that keeps no
  // members keeps these defaults.
  virtual void RecordMember(const Member& /*member*/, std::int64_t /*now*/) {}
  virtual void ForgetMember(std::string_view /*name*/) {}
  // Exclusive mode's lock (SESSION_MODE exclusive): one holder per session
  // across every process on the store, a farm's included. `owner` is the
  // holder's token, unique per request (a random string); `lease` seconds
  // bound how long it holds the lock unreleased, so a holder that died
  // (kill -9, a lost machine) never holds it for good. A store without
  // locks keeps these defaults, which throw StoreError (not busy).
  enum class LockOutcome {
    Taken,      // `owner` holds the lock until now + lease
    Held,       // another owner holds it, its lease not ended; nothing changed
    NoSession,  // no live session under `id` (none to lock: a new visitor's)
  };
  // Takes the lock of the session `id` when it is free or its lease has
  // ended (an expired holder loses it). Never waits for another holder.
  // Throws StoreError.
  virtual LockOutcome TryLock(std::string_view /*id*/, const SiteScope& /*site*/, std::string_view /*owner*/,
                              std::int64_t /*lease*/, std::int64_t /*now*/) {
    throw StoreError("this store has no session locks", 0, false);
  }
  LockOutcome TryLock(std::string_view id, std::string_view owner, std::int64_t lease, std::int64_t now) {
    return TryLock(id, SiteScope{}, owner, lease, now);
  }
  // Releases the lock of `id` if `owner` holds it (its lease ended or not);
  // otherwise does nothing. Throws StoreError.
  virtual void Unlock(std::string_view /*id*/, const SiteScope& /*site*/, std::string_view /*owner*/) {
    throw StoreError("this store has no session locks", 0, false);
  }
  void Unlock(std::string_view id, std::string_view owner) { Unlock(id, SiteScope{}, owner); }
  // Commit for a request holding the lock of `loaded` as `owner`: the check
  // that `owner` still holds it (its lease not ended at `now`), the changes
  // and the lock's release are one atomic unit. Not held (fencing): Fenced,
  // and nothing stored, for a change set that writes; Unchanged for a read.
  // A new visitor (`loaded` nullopt) commits as Commit does.
  virtual CommitResult CommitHolding(const std::optional<Session>& /*loaded*/, const ChangeSet& /*changes*/,
                                     std::int64_t /*now*/, const SiteScope& /*site*/,
                                     std::string_view /*owner*/) {
    throw StoreError("this store has no session locks", 0, false);
  }
  CommitResult CommitHolding(const std::optional<Session>& loaded, const ChangeSet& changes, std::int64_t now,
                             std::string_view owner) {
    return CommitHolding(loaded, changes, now, SiteScope{}, owner);
  }
};

}  // namespace sessiond
