#include "store/session_store.h"

#include <algorithm>

#include "log/log.h"
#include "store/session_id.h"

namespace sessiond {
namespace {

void CheckItemLimits(const std::vector<Change>& changes, const SessionLimits& limits) {
  auto check = [&](const std::string& key, const std::string& value) {
    if (key.empty()) throw LimitError("empty session key");
    if (key.size() > limits.max_key_bytes)
      throw LimitError("session key of " + std::to_string(key.size()) + " bytes exceeds max_key_bytes");
    if (value.size() > limits.max_value_bytes)
      throw LimitError("session value of " + std::to_string(value.size()) +
                       " bytes exceeds max_value_bytes");
  };
  for (const Change& c : changes) {
    if (c.kind == Change::Kind::Set) check(c.key, c.value);
    if (c.kind == Change::Kind::Replace)
      for (const auto& [k, v] : c.items) check(k, v);
  }
}

// A JSON item whose value is not JSON text is given to pages as the string
// it is: an older member of a farm (which does not know types) overwrote
// the value and left the type, or an operator edited the row by hand. So a
// page that finds SESSION_TYPE_<key>=json can always decode the value.
std::optional<Session> TrustedTypes(std::optional<Session> s) {
  if (s)
    for (auto it = s->json.begin(); it != s->json.end();) {
      auto item = s->items.find(*it);
      if (item == s->items.end() || !IsJsonText(item->second)) it = s->json.erase(it);
      else ++it;
    }
  return s;
}

void CheckTotals(std::size_t items, std::size_t bytes, const SessionLimits& limits) {
  if (items > limits.max_items)
    throw LimitError("session of " + std::to_string(items) + " items exceeds max_items");
  if (bytes > limits.max_session_bytes)
    throw LimitError("session of " + std::to_string(bytes) + " bytes exceeds max_session_bytes");
}

bool Writes(const std::vector<Change>& changes) {
  return std::any_of(changes.begin(), changes.end(), [](const Change& c) {
    return c.kind == Change::Kind::Set || c.kind == Change::Kind::Replace;
  });
}

void ApplyInPlace(StoreWriter& w, const IdDigest& d, const std::vector<Change>& changes) {
  for (const Change& c : changes) {
    switch (c.kind) {
      case Change::Kind::Set: w.SetItem(d, c.key, c.value, c.type); break;
      case Change::Kind::Remove: w.RemoveItem(d, c.key); break;
      case Change::Kind::Replace:
        w.ClearItems(d);
        for (const auto& [k, v] : c.items) w.SetItem(d, k, v, c.json.count(k) ? ItemType::Json : ItemType::String);
        break;
      case Change::Kind::Clear: w.ClearItems(d); break;
    }
  }
}

}  // namespace

PolicyStore::PolicyStore(std::unique_ptr<StoreBackend> backend, StoreTimeouts timeouts, SessionLimits limits)
    : backend_(std::move(backend)), timeouts_(timeouts), limits_(limits) {}

PolicyStore::~PolicyStore() = default;

std::int64_t PolicyStore::touch_interval(const StoreTimeouts& t) { return std::max<std::int64_t>(1, t.idle / 10); }

StoreTimeouts PolicyStore::TimeoutsOf(const SiteScope& site) const {
  if (!site.timeouts) return timeouts_;
  // route.h refuses a site's timeout above the process's; a caller that did
  // not check gets the process's bound rather than sessions that outlive it.
  // The rotation grace is the process's, whatever the site.
  return {std::min(site.timeouts->idle, timeouts_.idle), std::min(site.timeouts->absolute, timeouts_.absolute),
          timeouts_.grace};
}

std::optional<Session> PolicyStore::Load(std::string_view id, std::int64_t now, const SiteScope& site) {
  if (!IsWellFormedId(id)) return std::nullopt;
  const StoreTimeouts timeouts = TimeoutsOf(site);
  if (auto s = backend_->Load(DigestOf(id, site.site), id, now, timeouts)) return TrustedTypes(std::move(s));
  return Follow(id, now, site.site, timeouts);
}

// Forwards followed at most: a session regenerated this many times within one
// grace is rare enough, and a loop of forwards (only a hand-edited store could
// make one) ends.
constexpr int kMaxForwards = 4;

// Through each forward in turn: an id regenerated twice within the grace
// leads to the newest id, while its own forward lasts (never longer: the
// oldest id does not outlive its own window). A forward to a session that is
// gone (abandoned, expired) leads nowhere: a logout ends every tab's id.
// Every digest is the site's (DigestOf(id, site)): a forward of one site
// never leads another site's id anywhere.
std::optional<Session> PolicyStore::Follow(std::string_view id, std::int64_t now, std::string_view site,
                                           const StoreTimeouts& timeouts) {
  if (timeouts.grace <= 0) return std::nullopt;
  std::string from(id);
  for (int hop = 0; hop < kMaxForwards; ++hop) {
    std::optional<Forwarding> f = backend_->Forwarded(DigestOf(from, site), now);
    if (!f) return std::nullopt;
    std::string to = UnsealId(f->sealed, from);
    if (DigestOf(to, site) != f->to) return std::nullopt;  // not sealed for this id: a damaged row
    if (std::optional<Session> s = backend_->Load(f->to, to, now, timeouts)) {
      s->forwarded = true;
      return TrustedTypes(std::move(s));
    }
    from = std::move(to);
  }
  return std::nullopt;
}

// The units of work below may run on another thread than the caller's (a
// backend's group commit): they capture only this call's locals and members
// that do not change, and touch no thread-local state. Ids are made before
// the unit, on the caller's thread.
CommitResult PolicyStore::Commit(const std::optional<Session>& loaded, const ChangeSet& cs, std::int64_t now,
                                 const SiteScope& site) {
  CommitResult result = CommitOnce(loaded, cs, now, site);
  // The pre-login race: a request loaded the session under its old id, a
  // login regenerated it, and the request's write comes after. Within the old
  // id's grace it lands in the session under the new id, and the client gets
  // that id (Updated with `id`). Found gone again (abandoned, regenerated
  // once more since): Gone, as without a grace.
  if (result.outcome == CommitResult::Outcome::Gone)
    if (std::optional<Session> moved = Follow(loaded->id, now, site.site, TimeoutsOf(site))) {
      result = CommitOnce(moved, cs, now, site);
      if (result.outcome == CommitResult::Outcome::Updated) result.id = moved->id;
    }
  return result;
}

CommitResult PolicyStore::CommitOnce(const std::optional<Session>& loaded, const ChangeSet& cs, std::int64_t now,
                                     const SiteScope& site) {
  CheckItemLimits(cs.changes, limits_);

  if (!loaded) {
    // A new visitor: fold the changes in memory and store only if something is left.
    if (cs.abandon) return {};
    Items items;
    JsonKeys json;
    Apply(cs.changes, items, json);
    if (items.empty()) return {};
    std::size_t bytes = 0;
    for (const auto& [k, v] : items) bytes += k.size() + v.size();
    CheckTotals(items.size(), bytes, limits_);
    std::string id = NewSessionId();
    const IdDigest d = DigestOf(id, site.site);
    const StoreTimeouts timeouts = TimeoutsOf(site);
    const std::string& name = site.site;
    backend_->Write([&items, &json, &d, now, &timeouts, &name](StoreWriter& w) {
      w.Insert(d, now, timeouts, name);
      for (const auto& [k, v] : items) w.SetItem(d, k, v, json.count(k) ? ItemType::Json : ItemType::String);
    });
    return {CommitResult::Outcome::Created, id};
  }

  return CommitLoaded(*loaded, cs, now, site, nullptr);
}

CommitResult PolicyStore::CommitLoaded(const Session& loaded, const ChangeSet& asked, std::int64_t now,
                                       const SiteScope& site, const std::string_view* owner) {
  ChangeSet typed;
  const ChangeSet& cs = KeepLoadedTypes(asked, loaded, typed);
  const StoreTimeouts timeouts = TimeoutsOf(site);
  const IdDigest d = DigestOf(loaded.id, site.site);
  // On the store's clock, which may be another than the caller's (a database
  // server's): the same clock that recorded `accessed`.
  const bool touch_due = loaded.now - loaded.accessed >= touch_interval(timeouts);
  if (cs.empty() && owner) {
    // A read under the lock: the release, and the touch when due, in one
    // unit. A lock lost meanwhile changes nothing for a read (nothing of it
    // is stored): it is not touched and not released, it is another's.
    bool touched = false;
    try {
      backend_->Write([&touched, &d, now, owner, touch_due, &timeouts](StoreWriter& w) {
        if (!w.HoldsLock(d, *owner, now)) return;
        touched = touch_due && w.Touch(d, now, timeouts);
        w.ReleaseLock(d, *owner);
      });
    } catch (const StoreError& e) {
      // As the read's refresh below: the lease ends the lock anyway.
      if (!e.reported()) LogLine(std::string("store: session lock not released: ") + e.what());
      return {};
    }
    if (touched) return {CommitResult::Outcome::Updated, {}, true};
    return {};
  }
  if (cs.empty()) {
    // A read. Write only when the last-access time is due for a refresh, so
    // most reads cost no write at all.
    if (!touch_due) return {};
    try {
      bool touched = false;  // not when the session has gone meanwhile
      if (auto r = backend_->Change({d, now, true, false, cs.changes, nullptr, nullptr, timeouts}))
        touched = r->status == SessionChangeResult::Status::Done;
      else
        backend_->Write([&touched, &d, now, &timeouts](StoreWriter& w) { touched = w.Touch(d, now, timeouts); });
      if (touched) return {CommitResult::Outcome::Updated, {}, true};
    } catch (const StoreError& e) {
      // The refresh is an optimisation of the read, not part of it: failing
      // the page (503 or 500) for it would be worse than a session that ends
      // a little early. The next read due tries again.
      if (!e.reported()) LogLine(std::string("store: last access not refreshed: ") + e.what());
    }
    return {};
  }

  CommitResult result;
  std::string fresh_id = cs.regenerate ? NewSessionId() : std::string();
  const IdDigest fresh = cs.regenerate ? DigestOf(fresh_id, site.site) : IdDigest{};
  const SessionLimits& limits = limits_;
  // A regenerate with a rotation grace leaves a forward under the old id
  // (Follow). It runs as the unit below: a regenerate is rare (a login), and
  // the engine's one-statement change stays as it is.
  const bool forward = cs.regenerate && !cs.abandon && timeouts.grace > 0;
  const SealedId sealed = forward ? SealId(fresh_id, loaded.id) : SealedId{};
  // The same unit of work, done by the engine in one go where it can (see
  // StoreBackend::Change); the outcomes below are the unit's.
  // Not under a lock, nor a regenerate that leaves a forward: the lock's
  // check and the forward are in the unit below, which the engine's one
  // statement does not know.
  std::optional<SessionChangeResult> r;
  if (!owner && !forward)
    r = backend_->Change({d, now, touch_due, cs.abandon, cs.changes, Writes(cs.changes) ? &limits : nullptr,
                          cs.regenerate ? &fresh : nullptr, timeouts});
  if (r) {
    using Status = SessionChangeResult::Status;
    if (r->status == Status::OverLimit) {
      CheckTotals(r->items, r->bytes, limits);  // throws
      throw LimitError("session exceeds its limits");
    }
    if (cs.abandon) return {CommitResult::Outcome::Abandoned, {}};
    if (r->status == Status::Gone) return {CommitResult::Outcome::Gone, {}};
    if (cs.regenerate) return {CommitResult::Outcome::Regenerated, fresh_id};
    return {CommitResult::Outcome::Updated, {}, touch_due};
  }
  backend_->Write([&](StoreWriter& w) {
    // Fencing: a request whose lease ended (another may have taken the lock
    // and stored newer work since this one loaded) stores nothing.
    if (owner && !w.HoldsLock(d, *owner, now)) {
      result = {CommitResult::Outcome::Fenced, {}};
      return;
    }
    // Released with the changes, whatever becomes of the session below.
    if (owner) w.ReleaseLock(d, *owner);
    // The session may have expired, been abandoned or regenerated by another
    // request since it was loaded. When the last-access time is due, the touch
    // checks that; otherwise a read does, and the session row and its expiry
    // index entry stay as they are (two B-tree pages fewer in the WAL).
    bool alive = touch_due ? w.Touch(d, now, timeouts) : w.Alive(d, now, timeouts);
    if (!alive) {
      // Gone: never resurrect the old id, and never make a fresh session in its
      // place either. The request that killed it may have set a cookie (a login
      // regenerates), and a fresh session's cookie would overwrite that one.
      // Nothing was written.
      result = {cs.abandon ? CommitResult::Outcome::Abandoned : CommitResult::Outcome::Gone, {}};
      return;
    }
    if (cs.abandon) {
      w.Delete(d);
      result = {CommitResult::Outcome::Abandoned, {}};
      return;
    }
    ApplyInPlace(w, d, cs.changes);
    if (Writes(cs.changes)) {
      auto [items, bytes] = w.Totals(d);
      CheckTotals(items, bytes, limits);
    }
    if (cs.regenerate) {
      w.Rename(d, fresh);
      if (forward) w.Forward(d, fresh, sealed, now, timeouts.grace);
      result = {CommitResult::Outcome::Regenerated, fresh_id};
    } else {
      result = {CommitResult::Outcome::Updated, {}, touch_due};
    }
  });
  return result;
}

PolicyStore::LockOutcome PolicyStore::TryLock(std::string_view id, const SiteScope& site, std::string_view owner,
                                              std::int64_t lease, std::int64_t now) {
  if (!IsWellFormedId(id)) return LockOutcome::NoSession;
  const IdDigest d = DigestOf(id, site.site);
  const StoreTimeouts timeouts = TimeoutsOf(site);
  LockOutcome out = LockOutcome::NoSession;
  backend_->Write([&out, &d, owner, now, lease, &timeouts](StoreWriter& w) {
    out = w.TakeLock(d, owner, now, lease, timeouts);
  });
  return out;
}

void PolicyStore::Unlock(std::string_view id, const SiteScope& site, std::string_view owner) {
  if (!IsWellFormedId(id)) return;
  const IdDigest d = DigestOf(id, site.site);
  backend_->Write([&d, owner](StoreWriter& w) { w.ReleaseLock(d, owner); });
}

CommitResult PolicyStore::CommitHolding(const std::optional<Session>& loaded, const ChangeSet& cs, std::int64_t now,
                                        const SiteScope& site, std::string_view owner) {
  if (!loaded) return Commit(loaded, cs, now, site);
  CheckItemLimits(cs.changes, limits_);
  return CommitLoaded(*loaded, cs, now, site, &owner);
}

// Bounds the forwards one call collects beyond its first batch: forwards are
// one per regenerate and expire within seconds, so a backlog is a burst of
// logins since the last sweep; the rest waits for the next call.
constexpr int kForwardBatches = 64;

std::size_t PolicyStore::CollectGarbage(std::int64_t now, std::size_t batch) {
  std::size_t sessions = backend_->CollectGarbage(now, batch);
  // Ended forwards go with the sessions' sweep, and are not counted with them.
  for (int i = 0; i < kForwardBatches && backend_->CollectForwards(now, batch) == batch; ++i) {
  }
  return sessions;
}

std::optional<std::int64_t> PolicyStore::CountLive(std::int64_t now) { return backend_->CountLive(now); }

bool PolicyStore::HoldsExpired(std::string_view id, std::int64_t /*now*/, const SiteScope& site) {
  if (!IsWellFormedId(id)) return false;
  // Load() found no live session under this id: a row that is still there
  // is one that expired (abandoned and regenerated ids have no row).
  return backend_->Holds(DigestOf(id, site.site));
}

void PolicyStore::RecordMember(const Member& member, std::int64_t now) { backend_->RecordMember(member, now); }
void PolicyStore::ForgetMember(std::string_view name) { backend_->ForgetMember(name); }

}  // namespace sessiond
