// Limits on session floods: how fast one client address may create sessions
// (--new-sessions-per-minute) and how many live sessions the store may hold
// (--max-sessions). Handler::Process asks Admit() once for a request that
// would create a session (a visitor without one whose page stored something),
// after the page ran and before the commit; past a limit that request gets
// 503 with Retry-After, and nothing is stored. A request of an existing
// session never asks: a flood of new visitors cannot lock out the visitors
// who have a session already.
//
// The rate is counted by each sessiond in its own memory: in a farm, each
// member allows the rate. The cap is counted across the farm: the store's
// count of live sessions (the collector's, every kCountEvery; before its
// first, the request's own) plus the sessions this process has admitted
// since that count began.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "middleware/base/request.h"
#include "store/session.h"

namespace sessiond {

// The settings (--new-sessions-per-minute, --max-sessions); 0 turns a limit off.
struct NewSessionSettings {
  // Sessions one client address may create: this many at once, then one
  // every 60/N seconds (so N a minute under a steady flood). The address is
  // SESSION_CLIENT_ADDRESS when the web server sets it (after its own
  // real-IP handling), else REMOTE_ADDR; an IPv6 address counts by its /64.
  std::uint32_t per_minute = 0;
  // Live sessions in the store, all sites and farm members together.
  std::int64_t max_sessions = 0;
};

// Whether committing `changes` for `session` creates a session: the visitor
// has none (nullopt), and the changes leave something to store (the rule of
// SessionStore::Commit, store.h).
bool CreatesSession(const std::optional<Session>& session, const ChangeSet& changes);

// A client address as the rate counts it: an IPv4 address (also written as
// an IPv4-mapped IPv6 one), or the /64 prefix of an IPv6 address, which is
// what one host or one customer is usually given.
struct ClientKey {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 as ::ffff:a.b.c.d; IPv6 with the low 64 bits zero
  bool operator==(const ClientKey& other) const { return bytes == other.bytes; }
};

// `text` ("192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7") as a key, or
// nullopt when it is not an IP address.
std::optional<ClientKey> ParseClientAddress(std::string_view text);

// How the log names a key: "192.0.2.7", "2001:db8:1:2::/64".
std::string DescribeClient(const ClientKey& key);

// The per-address rate, as a generic cell rate algorithm: one time per
// address (when its allowance will be whole again), so a table entry is
// about 100 bytes whatever the rate (6 MiB at kMaxAddresses), each Take
// constant time. An address whose allowance is whole
// needs no entry; entries are kept in order of last use and the oldest
// dropped past `max_addresses` (so memory stays bounded when more addresses
// than that create sessions within one minute: a dropped address starts
// afresh, and --max-sessions still bounds the store).
//
// Thread-safety: none; NewSessionLimits guards it.
class NewSessionRate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxAddresses = 65536;

  explicit NewSessionRate(std::uint32_t per_minute, std::size_t max_addresses = kMaxAddresses);

  // Whether `key` may create a session at `now`. Allowed: counted, and the
  // result is zero. Not: nothing counted, and the result is how long until
  // it may (more than zero).
  Clock::duration Take(const ClientKey& key, Clock::time_point now);

  // Addresses in the table (whose allowance is not whole, or not yet seen to be).
  std::size_t size() const { return index_.size(); }

 private:
  struct KeyHash {
    std::size_t operator()(const ClientKey& k) const;
  };
  struct Entry {
    ClientKey key;
    Clock::time_point full;  // when the address's allowance is whole again
  };
  Clock::duration interval_;  // 60 s / per_minute: one creation's share of the allowance
  Clock::duration burst_;     // (per_minute - 1) intervals: how far ahead `full` may run
  std::size_t max_addresses_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<ClientKey, std::list<Entry>::iterator, KeyHash> index_;
};

// The live-session cap: the store's count plus what was admitted since it
// began (the count does not see sessions committed after it started; one it
// does see is counted twice until the next count, which errs on the safe side).
//
// Thread-safety: none; NewSessionLimits guards it.
class LiveSessionCap {
 public:
  explicit LiveSessionCap(std::int64_t max) : max_(max) {}

  // Creations admitted so far: read just before a count starts, handed to Counted().
  std::uint64_t Mark() const { return admitted_; }
  // The store counted `live` sessions in a count that began at `mark`.
  void Counted(std::int64_t live, std::uint64_t mark);
  // The live sessions as far as this process knows: nullopt before the first count.
  std::optional<std::int64_t> Estimate() const;
  // Whether one more may be created (always, before the first count: the
  // cap counts from the store's own count, which NewSessionLimits takes
  // first). Nothing is counted.
  bool Allows() const;
  // Counts one creation admitted.
  void Admitted() { ++admitted_; }
  // One admitted creation that stored nothing after all (its commit failed):
  // it must not hold a place under the cap until the next count. Admitted
  // before a count began and withdrawn after, it leaves the estimate one
  // under until the next count (the count did not see it either).
  void Withdrawn() { --admitted_; }

 private:
  std::int64_t max_;
  std::uint64_t admitted_ = 0;
  std::optional<std::int64_t> live_;  // the last count
  std::uint64_t mark_ = 0;            // admitted_ when it began
};

// Both limits, and the one log line a minute that tells of their refusals.
//
// Thread-safety: safe to share (every worker's handler and the collector).
class NewSessionLimits {
 public:
  using Clock = std::chrono::steady_clock;
  // How often the collector counts the store's live sessions when there is a cap.
  static constexpr std::chrono::seconds kCountEvery{5};
  // Retry-After for a refusal by the cap: the store is full until sessions
  // end, which takes longer than a rate's next allowance.
  static constexpr int kFullRetryAfter = 60;

  explicit NewSessionLimits(const NewSessionSettings& settings);

  const NewSessionSettings& settings() const { return settings_; }
  // Whether a request that creates a session needs to ask at all.
  bool any() const { return settings_.per_minute > 0 || settings_.max_sessions > 0; }

  // The store's live sessions (SessionStore::CountLive), or nullopt when it
  // cannot count them; may throw StoreError.
  using CountLive = std::function<std::optional<std::int64_t>()>;

  // For a request that would create a session: returns when it may (and
  // counts it), else throws HttpError 503 with Retry-After, not logged by
  // the handler: the first refusal of each kind is logged here, then at
  // most one line a minute saying how many more there were. A
  // SESSION_CLIENT_ADDRESS that is not an IP address is a 500 naming it
  // (the web server's configuration); a REMOTE_ADDR that is none (nginx's
  // "unix:" for a client on a unix socket) counts as one address. With a
  // cap and no count yet (the collector's first is under way), `count` is
  // asked first, on the caller's own connection; its StoreError reaches
  // the caller.
  void Admit(const Request& request, const CountLive& count, Clock::time_point now = Clock::now());

  // A request Admit() let through whose session was not created after all
  // (its commit refused or failed): its place under the cap is given back.
  // Its address's allowance stays used: the rate counts attempts.
  void Withdraw();

  // The collector's count (when settings().max_sessions is set).
  std::uint64_t Mark() const;
  void Counted(std::int64_t live, std::uint64_t mark);
  std::optional<std::int64_t> Estimate() const;

 private:
  // A kind of refusal's log state: when its line was last written, and the
  // refusals since. Guarded by mutex_.
  struct Quiet {
    std::optional<Clock::time_point> logged;
    std::uint64_t since = 0;
    // Whether a refusal at `now` writes a line; `more` the refusals left
    // unlogged since the last one.
    bool Due(Clock::time_point now, std::uint64_t& more);
  };

  const NewSessionSettings settings_;
  mutable std::mutex mutex_;
  NewSessionRate rate_;
  LiveSessionCap cap_;
  Quiet rate_quiet_, cap_quiet_;
};

}  // namespace sessiond
