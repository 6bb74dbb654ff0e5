// The connections of one process to one PostgreSQL database, shared by its
// threads (the workers and the collector): a request borrows one for each
// store call and gives it back, so the database sees --db-connections per
// machine however many workers run pages, and the whole process learns once
// that the server went away.
//
// - Size: at most `size` connections, each opened when first needed (the
//   first one that reaches the server runs `init`, the schema check, once
//   for the pool). A caller that finds none free waits, up to the timeout,
//   then gets a busy StoreError (503). When the server refuses a connection
//   for lack of room (max_connections, the role's or the database's
//   CONNECTION LIMIT) while the pool holds others, the pool shrinks to what
//   it holds and the caller waits for one of those; it tries to grow again
//   after a while. One log line says so.
// - Outages: when a connection breaks (the server shut down, a failover, a
//   cut link), the idle ones, which went to the same server, are closed
//   with it: the next caller connects afresh rather than finding each dead
//   connection in turn. When connecting fails (unreachable, refused,
//   authentication), the pool logs ONE line, and while it lasts only one
//   caller at a time tries to connect: the others fail at once. Every error
//   of an outage is reported() (the pool logged it: a caller answers 503
//   without a line of its own) and busy. The first connection that works
//   again logs one line: how long the outage lasted, how many calls were
//   refused.
// - Idle connections are reused last-in first-out, and one unused for
//   `max_idle` is closed, so a quiet process gives back what a burst took.
//
// Thread-safety: every method may be called from any thread; a Lease belongs
// to the thread that took it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/postgres/pg_conn.h"

namespace sessiond::pg {

struct PoolOptions {
  ConnOptions conn;
  std::size_t size = 8;
  std::chrono::milliseconds max_idle{60'000};
  // How long after shrinking (the server had no room) the pool tries to
  // open more connections again.
  std::chrono::milliseconds regrow_after{10'000};
  // Run on the first connection that reaches the server, until it succeeds
  // once (the schema check). Throws StoreError.
  std::function<void(Conn&)> init;
  // How the log lines name the database: a URI without its password.
  std::string name = "PostgreSQL";
};

class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // One connection, connected, for the caller alone until it is destroyed.
  class Lease {
   public:
    Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(o.conn_), lent_(o.lent_) { o.conn_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Conn& operator*() const { return *conn_; }
    Conn* operator->() const { return conn_; }

   private:
    friend class Pool;
    Lease(Pool* pool, Conn* conn) : pool_(pool), conn_(conn) {}
    Pool* pool_;
    Conn* conn_;
    bool lent_ = false;  // handed to the caller connected (not only being connected)
  };

  // A free connection, connected and with the schema checked. Waits up to
  // the timeout for one to be free. Throws StoreError: busy when waiting
  // longer or later may succeed; during an outage, busy and reported().
  // `request`: false for the process's own upkeep (the sweep, the member
  // heartbeat), which the outage's count of refused requests leaves out.
  Lease Acquire(bool request = true);

  // Connects one connection now and runs `init`, as serve does at start.
  // Throws the StoreError as it is (busy: unreachable, and the outage has
  // begun and is logged; not busy: a settings problem, not logged here).
  void Check();

  // The process-wide pool for `options.conn` (same URI and timeout), made
  // with these options by its first caller.
  static std::shared_ptr<Pool> Shared(const PoolOptions& options);

  struct Stats {
    std::size_t open = 0;   // connections connected
    std::size_t idle = 0;   // of those, free
    std::size_t limit = 0;  // connections it may hold now (size, or less after shrinking)
    bool outage = false;
    std::int64_t refused = 0;  // calls refused during the current outage
    std::int64_t shrink_lines = 0;  // "no room" lines logged, one per shortage
  };
  Stats stats() const;
  const PoolOptions& options() const { return opts_; }

 private:
  using Clock = std::chrono::steady_clock;
  // What Connect made of a connection it was given.
  enum class Got { kReady, kNoRoom };
  void Release(Conn* c, bool lent);
  // Connects `c` and runs init (outside the lock), with the outage
  // bookkeeping. Throws StoreError; kNoRoom: the server had no room for it
  // while others are open, and the pool has shrunk (the caller waits).
  Got Connect(Conn& c, bool raw, bool request = true);
  // Puts `c` back among the free ones (under the lock).
  void Give(Conn* c);
  void CloseIdle();

  PoolOptions opts_;
  mutable std::mutex m_;
  std::condition_variable free_cv_;
  std::vector<std::unique_ptr<Conn>> all_;  // made lazily, up to size
  std::deque<Conn*> idle_;                  // free: unconnected at the front, the last used at the back
  std::unordered_map<const Conn*, Clock::time_point> idle_since_;
  // Connected, as far as the pool knows (a connection in use is not looked
  // at: it belongs to its caller's thread), and being connected now.
  std::unordered_set<const Conn*> open_;
  std::size_t connecting_ = 0;
  std::size_t limit_;
  Clock::time_point shrunk_at_{};
  // The shortage was logged: not again at each try to grow back (every
  // regrow_after), only once the pool has been whole again.
  bool shrink_said_ = false;
  std::int64_t shrink_lines_ = 0;
  bool initialized_ = false;
  bool outage_ = false;
  bool probing_ = false;
  std::string outage_why_;
  Clock::time_point outage_since_{};
  std::int64_t refused_ = 0;
};

}  // namespace sessiond::pg
