#include "middleware/request_path/new_sessions.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "middleware/base/http.h"
#include "middleware/base/metrics.h"

namespace sessiond {
namespace {

// The key of every client whose REMOTE_ADDR is no IP address: all ones,
// which no address makes (an IPv6 key ends in 64 zero bits, an IPv4 one
// begins with 80).
constexpr ClientKey kNoAddress = [] {
  ClientKey k;
  for (auto& b : k.bytes) b = 0xff;
  return k;
}();

// The client's address: the web server's SESSION_CLIENT_ADDRESS (set after
// its real-IP handling; sent empty, it counts as not sent), else REMOTE_ADDR.
// Never a header of the client's own: those arrive as HTTP_*.
ClientKey ClientOf(const Request& request) {
  if (std::optional<std::string_view> given = request.Param("SESSION_CLIENT_ADDRESS"); given && !given->empty()) {
    if (std::optional<ClientKey> key = ParseClientAddress(*given)) return *key;
    std::string shown(given->substr(0, 64));
    if (given->size() > 64) shown += "...";
    throw HttpError(500, "SESSION_CLIENT_ADDRESS '" + shown +
                             "' is not understood: one IPv4 or IPv6 address (fix the web server's fastcgi_param or "
                             "SetEnv)");
  }
  return ParseClientAddress(request.Param("REMOTE_ADDR").value_or("")).value_or(kNoAddress);
}

int WholeSeconds(std::chrono::steady_clock::duration d) {
  return static_cast<int>(std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(d).count()));
}

}  // namespace

bool CreatesSession(const std::optional<Session>& session, const ChangeSet& changes) {
  if (session || changes.abandon) return false;
  Items items;
  JsonKeys json;
  Apply(changes.changes, items, json);
  return !items.empty();
}

std::optional<ClientKey> ParseClientAddress(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  ClientKey key;
  in_addr v4;
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    key.bytes[10] = key.bytes[11] = 0xff;
    std::memcpy(&key.bytes[12], &v4, 4);
    return key;
  }
  in6_addr v6;
  if (::inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  std::memcpy(key.bytes.data(), &v6, 16);
  if (!IN6_IS_ADDR_V4MAPPED(&v6)) std::fill(key.bytes.begin() + 8, key.bytes.end(), 0);
  return key;
}

std::string DescribeClient(const ClientKey& key) {
  if (key == kNoAddress) return "with no IP address in REMOTE_ADDR";
  char text[INET6_ADDRSTRLEN] = "";
  in6_addr v6;
  std::memcpy(&v6, key.bytes.data(), 16);
  if (IN6_IS_ADDR_V4MAPPED(&v6)) return ::inet_ntop(AF_INET, &key.bytes[12], text, sizeof text);
  return std::string(::inet_ntop(AF_INET6, &v6, text, sizeof text)) + "/64";
}

std::size_t NewSessionRate::KeyHash::operator()(const ClientKey& k) const {
  std::uint64_t a, b;
  std::memcpy(&a, k.bytes.data(), 8);
  std::memcpy(&b, k.bytes.data() + 8, 8);
  return std::hash<std::uint64_t>()(a * 0x9e3779b97f4a7c15ULL ^ b);
}

NewSessionRate::NewSessionRate(std::uint32_t per_minute, std::size_t max_addresses)
    : interval_(Clock::duration(std::chrono::minutes(1)) / std::max<std::uint32_t>(per_minute, 1)),
      burst_(interval_ * (std::max<std::uint32_t>(per_minute, 1) - 1)),
      max_addresses_(std::max<std::size_t>(max_addresses, 1)) {}

NewSessionRate::Clock::duration NewSessionRate::Take(const ClientKey& key, Clock::time_point now) {
  // The least recently used entries whose allowance is whole again are of no
  // use: dropped here, a few at a time, so no sweep is ever needed.
  while (!entries_.empty() && entries_.back().full <= now) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
  auto found = index_.find(key);
  if (found == index_.end()) {
    entries_.push_front({key, now + interval_});
    index_.emplace(key, entries_.begin());
    if (index_.size() > max_addresses_) {
      index_.erase(entries_.back().key);
      entries_.pop_back();
    }
    return Clock::duration::zero();
  }
  Entry& e = *found->second;
  const Clock::time_point from = std::max(e.full, now);
  // Allowed while `full` stays within the burst ahead of now: per_minute at
  // once, then one each interval.
  if (from - now > burst_) return from - burst_ - now;
  e.full = from + interval_;
  entries_.splice(entries_.begin(), entries_, found->second);
  return Clock::duration::zero();
}

void LiveSessionCap::Counted(std::int64_t live, std::uint64_t mark) {
  live_ = live;
  mark_ = mark;
}

std::optional<std::int64_t> LiveSessionCap::Estimate() const {
  if (!live_) return std::nullopt;
  // Signed: a creation admitted before the count began and withdrawn after
  // it takes the difference below zero (C++20's conversion wraps back).
  return *live_ + static_cast<std::int64_t>(admitted_ - mark_);
}

bool LiveSessionCap::Allows() const {
  std::optional<std::int64_t> live = Estimate();
  return max_ <= 0 || !live || *live < max_;
}

NewSessionLimits::NewSessionLimits(const NewSessionSettings& settings)
    : settings_(settings), rate_(settings.per_minute), cap_(settings.max_sessions) {}

bool NewSessionLimits::Quiet::Due(Clock::time_point now, std::uint64_t& more) {
  if (logged && now - *logged < std::chrono::minutes(1)) {
    ++since;
    return false;
  }
  more = since;
  since = 0;
  logged = now;
  return true;
}

void NewSessionLimits::Admit(const Request& request, const CountLive& count, Clock::time_point now) {
  if (!any()) return;
  if (settings_.max_sessions > 0 && count) {
    // No count yet (just started): one now, rather than no cap until the
    // collector's. Outside the lock: it is a query.
    std::unique_lock lock(mutex_);
    if (!cap_.Estimate()) {
      const std::uint64_t mark = cap_.Mark();
      lock.unlock();
      std::optional<std::int64_t> live = count();
      lock.lock();
      if (live && !cap_.Estimate()) cap_.Counted(*live, mark);  // unless the collector's came meanwhile
    }
  }
  const std::optional<ClientKey> client =
      settings_.per_minute > 0 ? std::optional<ClientKey>(ClientOf(request)) : std::nullopt;
  bool by_rate = false, log = false;
  std::uint64_t more = 0;
  int retry_after = 1;
  std::optional<std::int64_t> live;
  {
    std::lock_guard lock(mutex_);
    // The cap first: a request the full store refuses uses none of its
    // address's allowance.
    if (!cap_.Allows()) {
      live = cap_.Estimate();
      retry_after = kFullRetryAfter;
      log = cap_quiet_.Due(now, more);
    } else if (Clock::duration wait = client ? rate_.Take(*client, now) : Clock::duration::zero();
               wait > Clock::duration::zero()) {
      by_rate = true;
      retry_after = WholeSeconds(wait);
      log = rate_quiet_.Due(now, more);
    } else {
      cap_.Admitted();
      return;
    }
  }
  ProcessMetrics().CountNewSessionRefused(by_rate ? Metrics::Refusal::Rate : Metrics::Refusal::MaxSessions);
  const std::string why =
      by_rate ? "new session refused: client " + DescribeClient(*client) + " is past --new-sessions-per-minute " +
                    std::to_string(settings_.per_minute)
              : "new session refused: the store holds about " + std::to_string(live.value_or(0)) +
                    " live sessions, --max-sessions " + std::to_string(settings_.max_sessions);
  if (log)
    LogFailure(503, request.Environment(),
               why + " (such refusals are logged at most once a minute; " +
                   (more ? std::to_string(more) + " more since the last line; " : std::string()) +
                   "sessiond_new_sessions_refused_total counts each)");
  throw HttpError(503, why, false, retry_after);
}

void NewSessionLimits::Withdraw() {
  std::lock_guard lock(mutex_);
  cap_.Withdrawn();
}

std::uint64_t NewSessionLimits::Mark() const {
  std::lock_guard lock(mutex_);
  return cap_.Mark();
}

void NewSessionLimits::Counted(std::int64_t live, std::uint64_t mark) {
  std::lock_guard lock(mutex_);
  cap_.Counted(live, mark);
}

std::optional<std::int64_t> NewSessionLimits::Estimate() const {
  std::lock_guard lock(mutex_);
  return cap_.Estimate();
}

}  // namespace sessiond
