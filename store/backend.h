// What a storage engine gives the session policy (store/session_store.h):
// rows of sessions and items under the digests of their ids, and atomic units
// of work over them. The policy (limits, lazy touch, a session gone since it
// was loaded, regenerate, abandon) lives above this line, once for every
// engine; a backend knows its engine (both of today's speak SQL;
// any engine that gives atomic units of work with answers inside them fits),
// nothing about HTTP or cookies.
// Every engine runs the same conformance suite (tests/store_conformance_test.cc).
//
// Times are unix seconds. `now` is the caller's clock; a backend configured to
// use its server's clock (PostgreSQL, so the machines of a farm agree on
// expiry) ignores it and uses its own, everywhere it takes a `now`.
// A session is alive at `now` when expires > now, accessed > now - idle and
// created > now - absolute (the timeouts of StoreTimeouts): sql::Alive
// (liveness.h), from which every engine's statements are built.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/session.h"
#include "store/session_id.h"
#include "store/store.h"

namespace sessiond {

// Refuses a store whose schema `version` is newer than the one this build
// writes (`known`): what that version changed is not known here, so neither
// serving from it nor inspecting it is safe. Throws StoreError, not busy,
// with the engine's error `code`; `engine` begins the message ("PostgreSQL: "
// or nothing). Every engine's schema check, the server's and the admin's.
inline void RefuseNewerSchema(std::int64_t version, int known, const std::string& engine, int code) {
  if (version > known)
    throw StoreError(engine + "database schema version " + std::to_string(version) +
                         " is newer than this sessiond supports (" + std::to_string(known) + ")",
                     code, false);
}

// The operations of one unit of work. Valid only inside StoreBackend::Write's
// call of the unit; every method throws StoreError. `t`: the timeouts of the
// session's site (SiteScope), which every timed statement uses.
class StoreWriter {
 public:
  virtual ~StoreWriter() = default;
  // Sets accessed = now and expires = min(now + idle, created + absolute) if
  // the session is alive at `now`; returns whether it was (and so touched).
  virtual bool Touch(const IdDigest& d, std::int64_t now, const StoreTimeouts& t) = 0;
  // Whether the session is alive at `now`. Writes nothing.
  virtual bool Alive(const IdDigest& d, std::int64_t now, const StoreTimeouts& t) = 0;
  // A new session of `site` (the sessions row's site column, which only the
  // operator's commands read: `d` is already the digest of the site's id):
  // created = accessed = now, expires = now + min(idle, absolute).
  virtual void Insert(const IdDigest& d, std::int64_t now, const StoreTimeouts& t, std::string_view site) = 0;
  virtual void SetItem(const IdDigest& d, std::string_view key, std::string_view value) = 0;
  virtual void RemoveItem(const IdDigest& d, std::string_view key) = 0;
  virtual void ClearItems(const IdDigest& d) = 0;
  // The session's item count and the bytes of its keys and values.
  virtual std::pair<std::size_t, std::size_t> Totals(const IdDigest& d) = 0;
  // Moves the session and its items to `to`.
  virtual void Rename(const IdDigest& from, const IdDigest& to) = 0;
  // Deletes the session and its items.
  virtual void Delete(const IdDigest& d) = 0;
};

// A change of one loaded session, whole: what PolicyStore::Commit's unit of
// work over StoreWriter does (the liveness check that locks the session, the
// lazy touch, the changes in order, the totals against the limits, the
// rename), given to an engine that can do it all in one statement.
struct SessionChange {
  const IdDigest& id;
  std::int64_t now;
  bool touch;                          // refresh the last access (Touch), else only check Alive
  bool abandon;                        // delete the session; the fields below are ignored
  const std::vector<Change>& changes;  // applied in order, merging per key
  // Checked against the totals the changes make; nullptr: not checked (a
  // change set that only removes).
  const SessionLimits* limits;
  const IdDigest* fresh;  // regenerate: move the session here; nullptr: it stays
  const StoreTimeouts& timeouts;  // the session's site's
};

struct SessionChangeResult {
  enum class Status {
    Gone,       // not alive at `now` (abandon: not there either); nothing written
    Done,       // all written
    OverLimit,  // the totals below would exceed the limits; nothing written
  };
  Status status = Status::Gone;
  std::size_t items = 0, bytes = 0;  // OverLimit: the session's totals had it been written
};

// Thread-safety: one instance per thread (one connection each). Instances on
// one store, in one process or many, on one machine or many, may be used at
// once: the engine serialises what must be.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;

  // The session under `d` alive at `now`, row and items from one snapshot,
  // with `id` copied into it and Session::now set to the clock the backend
  // used; nullopt when there is none. Never writes.
  // `t`: the timeouts of the session's site.
  virtual std::optional<Session> Load(const IdDigest& d, std::string_view id, std::int64_t now,
                                      const StoreTimeouts& t) = 0;

  // Runs `unit` as one atomic unit of work: all of its writes are durable
  // (as the store's durability setting defines) when Write returns, or none
  // of them is kept. When `unit` throws, its writes are undone and the
  // exception leaves Write. A backend may run units of several threads in
  // one transaction (group commit), each unit all-or-nothing on its own,
  // and may call `unit` on another thread than the caller's while the
  // caller waits; `unit` must not touch thread-local state. Throws
  // StoreError when the work could not be made durable; the outcome is then
  // unknown to the caller only where the error says so (a connection lost
  // during COMMIT), and the caller must report failure either way.
  virtual void Write(const std::function<void(StoreWriter&)>& unit) = 0;

  // `change` as one atomic unit of work, with the same semantics, locks and
  // durability as the unit PolicyStore would run through Write. An engine
  // where a unit's statements cost round trips (PostgreSQL) does it in one.
  // As Write's units, changes of several threads may share one transaction,
  // each all-or-nothing on its own (a refused one writes nothing) and seeing
  // those before it; when that transaction fails, each of them fails.
  // nullopt (the default): not offered, the policy runs its unit instead.
  // Throws StoreError, in which case nothing was changed (or, as for Write,
  // the outcome is unknown where the error says so).
  virtual std::optional<SessionChangeResult> Change(const SessionChange& /*change*/) { return std::nullopt; }

  // Deletes up to `batch` sessions expired at `now` (stored expires <= now);
  // returns how many. Several processes collecting at once must not block
  // each other or requests, nor delete a row twice.
  virtual std::size_t CollectGarbage(std::int64_t now, std::size_t batch) = 0;

  // Sessions with stored expires > now, counted from the expiry index.
  virtual std::optional<std::int64_t> CountLive(std::int64_t now) = 0;
  // Whether a row under `d` exists at all (alive or not).
  virtual bool Holds(const IdDigest& d) = 0;
};

}  // namespace sessiond
