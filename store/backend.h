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

// A store's schema, as rolling upgrades need it (docs/farm.md, "Rolling
// upgrades"). `version`: the expand steps applied. Every expand step is
// additive (a table, a column with a default, an index, a function under a
// new name), so a store a newer sessiond expanded still serves the older
// ones of a farm, and one member at a time can be upgraded or rolled back.
// `required`: the lowest schema version a sessiond must know to use the
// store, raised only by contract steps, which `sessiond migrate --finish`
// runs once no older member is running.
struct SchemaLevel {
  std::int64_t version = 0;
  std::int64_t required = 0;
};

// A contract step: `sql` may take away what sessionds of a schema version
// below `needs` use (a column they read, a function they call), so it
// runs only when none of them is seen running, and afterwards `required`
// is `needs`.
struct ContractStep {
  int needs = 0;
  std::string sql;
};

// One engine's schema steps: expand[i] migrates version i to i + 1.
struct SchemaSteps {
  std::vector<std::string> expand;
  std::vector<ContractStep> contract;
  int known() const { return static_cast<int>(expand.size()); }
};

// Refuses a store whose schema needs more than this build `known`s: a
// contract step removed what this sessiond uses. Throws SchemaError (a
// StoreError, not busy) with the engine's error `code`; `engine` begins the message
// ("PostgreSQL: " or nothing). Every engine's schema check, the server's and
// the admin's. A store expanded past `known` is fine: that is a newer member
// of the farm, whose steps are additive.
inline void RefuseUnusableSchema(const SchemaLevel& level, int known, const std::string& engine, int code) {
  if (level.required > known)
    throw SchemaError(engine + "the store's schema needs a sessiond of schema version " +
                         std::to_string(level.required) + " or later (sessiond migrate --finish raised it); " +
                          "this one knows " + std::to_string(known) + ": upgrade it",
                      code);
}


// The timeouts every timed query uses.
struct StoreTimeouts {
  std::int64_t idle = 20 * 60;        // seconds without a request before a session ends
  std::int64_t absolute = 24 * 3600;  // seconds after creation a session ends regardless
  // Rotation grace (--regenerate-grace): seconds after a regenerate during
  // which the old id still leads to the session (a forward); 0: none.
  std::int64_t grace = 10;
};

// Where a regenerated id leads during its grace: the session's digest since,
// and its new id sealed for the holder of the old one (SealId).
struct Forwarding {
  IdDigest to;
  SealedId sealed;
};

// The operations of one unit of work. Valid only inside StoreBackend::Write's
// call of the unit; every method throws StoreError.
class StoreWriter {
 public:
  virtual ~StoreWriter() = default;
  // Sets accessed = now and expires = min(now + idle, created + absolute) if
  // the session is alive at `now`; returns whether it was (and so touched).
  virtual bool Touch(const IdDigest& d, std::int64_t now) = 0;
  // Whether the session is alive at `now`. Writes nothing.
  virtual bool Alive(const IdDigest& d, std::int64_t now) = 0;
  // A new session: created = accessed = now, expires = now + min(idle, absolute).
  virtual void Insert(const IdDigest& d, std::int64_t now) = 0;
  // Sets the item's value and its type together (an upsert replaces both).
  virtual void SetItem(const IdDigest& d, std::string_view key, std::string_view value, ItemType type) = 0;
  virtual void RemoveItem(const IdDigest& d, std::string_view key) = 0;
  virtual void ClearItems(const IdDigest& d) = 0;
  // The session's item count and the bytes of its keys and values.
  virtual std::pair<std::size_t, std::size_t> Totals(const IdDigest& d) = 0;
  // Moves the session and its items to `to`.
  virtual void Rename(const IdDigest& from, const IdDigest& to) = 0;
  // Deletes the session and its items.
  virtual void Delete(const IdDigest& d) = 0;
  // Records that the session under `from` moved to `to` (a regenerate):
  // Forwarded(from) finds it until now + timeouts.grace, on the clock every
  // timed statement uses.
  virtual void Forward(const IdDigest& from, const IdDigest& to, const SealedId& sealed, std::int64_t now) = 0;

  // Exclusive mode's lock of the session `d` (SessionStore::TryLock): a row
  // beside the sessions with its owner and the end of its lease (expires =
  // now + lease, on the clock of every other `now`). Taken when the session
  // is alive at `now` and the lock is free or its lease ended (expires <= now).
  virtual SessionStore::LockOutcome TakeLock(const IdDigest& d, std::string_view owner, std::int64_t now,
                                             std::int64_t lease) = 0;
  // Whether `owner` holds the lock with its lease not ended at `now`; the
  // lock then stays as it is until the unit ends (no one takes it between
  // this check and the unit's writes).
  virtual bool HoldsLock(const IdDigest& d, std::string_view owner, std::int64_t now) = 0;
  // Removes the lock if `owner` holds it; else nothing.
  virtual void ReleaseLock(const IdDigest& d, std::string_view owner) = 0;
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

  // The session under `d` alive at `now`, row and items (with their types)
  // from one snapshot,
  // with `id` copied into it and Session::now set to the clock the backend
  // used; nullopt when there is none. Never writes.
  virtual std::optional<Session> Load(const IdDigest& d, std::string_view id, std::int64_t now) = 0;

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
  // Also removes the session locks whose lease ended at `now` (a holder
  // that died leaves its row; not counted).
  virtual std::size_t CollectGarbage(std::int64_t now, std::size_t batch) = 0;

  // Sessions with stored expires > now, counted from the expiry index.
  virtual std::optional<std::int64_t> CountLive(std::int64_t now) = 0;
  // Whether a row under `d` exists at all (alive or not).
  virtual bool Holds(const IdDigest& d) = 0;

  // Records `member` as running at `now` (its schema: the one this build
  // knows), and forgets the members not seen for kForgetAfter.
  virtual void RecordMember(const Member& member, std::int64_t now) = 0;
  // Removes the member called `name`: it stopped.
  virtual void ForgetMember(std::string_view name) = 0;

  // The forward StoreWriter::Forward recorded under `d`, if its grace has not
  // ended at `now` (it ends exactly at its expiry). Says nothing of whether
  // the session it leads to is alive. Never writes.
  virtual std::optional<Forwarding> Forwarded(const IdDigest& d, std::int64_t now) = 0;
  // Deletes up to `batch` forwards whose grace ended at `now`; returns how
  // many. As CollectGarbage: collectors at once neither block nor collide.
  virtual std::size_t CollectForwards(std::int64_t now, std::size_t batch) = 0;
};

}  // namespace sessiond
