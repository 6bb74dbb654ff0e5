#include "store/postgres/pg_pool.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "log/log.h"

namespace sessiond::pg {
namespace {

// The server had no room for one more connection (max_connections, the
// reserved slots, the role's or the database's CONNECTION LIMIT).
bool NoRoom(const std::string& what) {
  return what.find("too many clients") != std::string::npos ||
         what.find("too many connections") != std::string::npos ||
         what.find("connection slots are reserved") != std::string::npos;
}

std::string Seconds(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  char out[32];
  std::snprintf(out, sizeof out, "%lld.%01lld s", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000 / 100));
  return out;
}

}  // namespace

Pool::Pool(PoolOptions options) : opts_(std::move(options)), limit_(std::max<std::size_t>(1, opts_.size)) {
  opts_.size = limit_;
  if (!opts_.conn.last_host) opts_.conn.last_host = std::make_shared<std::atomic<int>>(0);
}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (conn_) pool_->Release(conn_, lent_);
}

Pool::Stats Pool::stats() const {
  std::lock_guard lock(m_);
  Stats s;
  s.open = open_.size();
  for (const Conn* c : idle_) s.idle += open_.count(c);
  s.limit = limit_;
  s.outage = outage_;
  s.refused = refused_;
  s.shrink_lines = shrink_lines_;
  return s;
}

void Pool::CloseIdle() {
  for (Conn* c : idle_) {
    c->Close();
    open_.erase(c);
  }
}

void Pool::Give(Conn* c) {
  if (c->connected()) {
    idle_since_[c] = Clock::now();
    idle_.push_back(c);
  } else {
    idle_.push_front(c);
  }
  free_cv_.notify_one();
}

void Pool::Release(Conn* c, bool lent) {
  std::lock_guard lock(m_);
  // It broke in the caller's hands (Conn closes itself after a
  // connection-level error): the server is gone, or it is a standby now. The
  // idle ones went to the same server; closing them now spares each of
  // their next callers the discovery.
  if (!c->connected() && open_.erase(c) && lent) CloseIdle();
  Give(c);
}

Pool::Got Pool::Connect(Conn& c, bool raw, bool request) {
  {
    std::lock_guard lock(m_);
    ++connecting_;
  }
  try {
    c.Connect();
    bool init;
    {
      std::lock_guard lock(m_);
      init = !initialized_;
    }
    if (init && opts_.init) opts_.init(c);
  } catch (const StoreError& e) {
    std::lock_guard lock(m_);
    --connecting_;
    probing_ = false;
    if (c.connected()) open_.insert(&c);  // connected, the schema check failed
    else open_.erase(&c);
    // Those connecting now count: the server counted them, too.
    std::size_t open = open_.size() + connecting_;
    if (NoRoom(e.what()) && open > 0) {
      if (limit_ > open) {
        if (!shrink_said_) {
          LogLine(opts_.name + " has no room for more of sessiond's connections (" + e.what() + "): using the " +
                  std::to_string(open) + " it has, of --db-connections " + std::to_string(opts_.size));
          shrink_said_ = true;
          ++shrink_lines_;
        }
        limit_ = open;
      }
      shrunk_at_ = Clock::now();
      return Got::kNoRoom;
    }
    if (raw && !e.busy()) throw;  // serve's start: a settings error, said by serve
    if (!outage_) {
      outage_ = true;
      outage_since_ = Clock::now();
      outage_why_ = e.what();
      refused_ = 0;
      LogLine(opts_.name +
              (e.busy() ? " out of reach: " + outage_why_ + "; requests that need it get 503 until it is back"
                        : " refuses sessiond: " + outage_why_ +
                              "; requests that need it get 503 until the settings are mended"));
    }
    if (raw) throw;
    refused_ += request;
    throw StoreError(e.what(), e.code(), true, true);
  } catch (...) {  // out of memory: no outage, but nobody left probing
    std::lock_guard lock(m_);
    --connecting_;
    probing_ = false;
    throw;
  }
  std::lock_guard lock(m_);
  --connecting_;
  open_.insert(&c);
  if (open_.size() >= opts_.size) shrink_said_ = false;  // whole again: a new shortage is news
  initialized_ = true;
  probing_ = false;
  if (outage_) {
    outage_ = false;
    LogLine(opts_.name + " is back after " + Seconds(Clock::now() - outage_since_) + "; " +
            std::to_string(refused_) + (refused_ == 1 ? " request" : " requests") + " refused meanwhile");
  }
  return Got::kReady;
}

Pool::Lease Pool::Acquire(bool request) {
  auto deadline = Clock::now() + std::chrono::milliseconds(opts_.conn.timeout_ms);
  for (;;) {
    Conn* c = nullptr;
    {
      std::unique_lock lock(m_);
      for (;;) {
        auto now = Clock::now();
        if (limit_ < opts_.size && now - shrunk_at_ >= opts_.regrow_after) limit_ = opts_.size;
        // Idle too long: closed (the least recently used are at the front).
        for (Conn* i : idle_)
          if (i->connected() && now - idle_since_[i] > opts_.max_idle) {
            i->Close();
            open_.erase(i);
          }
        std::stable_partition(idle_.begin(), idle_.end(), [](const Conn* i) { return !i->connected(); });
        std::size_t in_use = all_.size() - idle_.size();
        if (in_use < limit_) {
          if (!idle_.empty() && idle_.back()->connected()) {
            c = idle_.back();
            idle_.pop_back();
            // The server said goodbye on it (shut down, restarted): so it
            // did on the others, which are closed with it.
            if (c->DropIfDead()) {
              open_.erase(c);
              CloseIdle();
            }
          }
          if (!c && outage_ && probing_) {
            refused_ += request;
            throw StoreError(outage_why_, 0, true, true);
          }
          if (!c && !idle_.empty()) {
            c = idle_.front();
            idle_.pop_front();
          }
          if (!c && all_.size() < opts_.size) {
            all_.push_back(std::make_unique<Conn>(opts_.conn));
            c = all_.back().get();
          }
          if (c) {
            if ((!c->connected() || !initialized_) && outage_) probing_ = true;
            break;
          }
        }
        if (free_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
          if (outage_) {
            refused_ += request;
            throw StoreError(outage_why_, 0, true, true);
          }
          throw StoreError("PostgreSQL: all " + std::to_string(limit_) + " connections busy for " +
                               std::to_string(opts_.conn.timeout_ms) + " ms (--db-connections, --busy-timeout)",
                           0, true);
        }
      }
    }
    Lease lease(this, c);  // gives it back if connecting fails
    bool ready;
    {
      std::lock_guard lock(m_);
      ready = c->connected() && initialized_;
    }
    if (ready || Connect(*c, false, request) == Got::kReady) {
      lease.lent_ = true;
      return lease;
    }
    // No room on the server: wait for one of the connections open.
  }
}

void Pool::Check() {
  Conn* c;
  {
    std::lock_guard lock(m_);
    if (all_.size() < opts_.size) {
      all_.push_back(std::make_unique<Conn>(opts_.conn));
      c = all_.back().get();
    } else if (!idle_.empty()) {
      c = idle_.front();
      idle_.pop_front();
    } else {
      return;  // all in use: it is serving
    }
  }
  Lease lease(this, c);
  Connect(*c, true);
}

std::shared_ptr<Pool> Pool::Shared(const PoolOptions& options) {
  static std::mutex m;
  static std::map<std::string, std::shared_ptr<Pool>> pools;
  std::lock_guard lock(m);
  std::shared_ptr<Pool>& p = pools[options.conn.uri + '\n' + std::to_string(options.conn.timeout_ms)];
  if (!p) p = std::make_shared<Pool>(options);
  return p;
}

}  // namespace sessiond::pg
