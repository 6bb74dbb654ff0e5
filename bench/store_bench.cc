// The store without HTTP: load and commit latency and throughput with 10k,
// 100k and 1M sessions in the file, durability FULL and NORMAL, bytes of file
// per session, and whether reads within the touch window write. Prints a
// Markdown table. Then concurrent durable writes: THREADS threads (16), each
// with a store of its own as a server's workers, committing to sessions of
// their own with synchronous FULL.
// Usage: store_bench DIR|URI [SESSIONS...]   or   store_bench DIR|URI --writers [THREADS [COMMITS [one]]]
// (one: all writers on one session, each its own key, as requests of one visitor)
// (a postgresql:// URI: the same on that PostgreSQL database, which it empties
// first, instead of files in DIR; durability is the server's own)
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/open.h"
#include "store/postgres/pg_conn.h"
#include "store/session_id.h"

using namespace sessiond;
using Clock = std::chrono::steady_clock;

namespace {

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

struct Stats {
  double p50, p99, per_second;
};

Stats Summarize(std::vector<double> us) {
  double total = 0;
  for (double u : us) total += u;
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100], static_cast<double>(us.size()) / (total / 1e6)};
}

// Commit latency: 2000 changes of one item, each to a session just loaded.
std::vector<double> TimeCommits(SessionStore& store, const std::vector<std::string>& ids,
                                std::uniform_int_distribution<std::size_t>& pick, std::mt19937_64& rng,
                                std::int64_t now) {
  std::vector<double> commits;
  for (int k = 0; k < 2000; ++k) {
    auto s = store.Load(ids[pick(rng)], now);
    ChangeSet cs;
    cs.changes.push_back({Change::Kind::Set, "UserName", "bench" + std::to_string(k), {}});
    auto t0 = Clock::now();
    store.Commit(s, cs, now);
    commits.push_back(Micros(Clock::now() - t0));
  }
  return commits;
}

void Check(int rc, sqlite3* db) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    std::fprintf(stderr, "store_bench: %s\n", sqlite3_errmsg(db));
    std::exit(1);
  }
}

// Fills the file with `n` sessions of one item each, in one transaction,
// straight through SQLite (a million commits one by one would take minutes).
std::vector<std::string> Populate(const std::string& path, std::size_t n, std::int64_t now) {
  StoreOptions o;
  o.db = path;
  OpenStore(o);  // creates the schema
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db), db);
  Check(sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", nullptr, nullptr, nullptr), db);
  sqlite3_stmt *s = nullptr, *i = nullptr;
  Check(sqlite3_prepare_v2(db, "INSERT INTO sessions (id_hash, created, accessed, expires) VALUES (?1, ?2, ?2, ?2 + 86400)", -1, &s, nullptr), db);
  Check(sqlite3_prepare_v2(db, "INSERT INTO items VALUES (?1, 'UserName', ?2)", -1, &i, nullptr), db);
  std::vector<std::string> ids;
  ids.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    ids.push_back(NewSessionId());
    IdDigest d = DigestOf(ids.back());
    std::string name = "user" + std::to_string(k);
    sqlite3_bind_blob(s, 1, d.data(), static_cast<int>(d.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    Check(sqlite3_step(s), db);
    sqlite3_reset(s);
    sqlite3_bind_blob(i, 1, d.data(), static_cast<int>(d.size()), SQLITE_STATIC);
    sqlite3_bind_text(i, 2, name.c_str(), -1, SQLITE_STATIC);
    Check(sqlite3_step(i), db);
    sqlite3_reset(i);
  }
  sqlite3_finalize(s);
  sqlite3_finalize(i);
  Check(sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr), db);
  sqlite3_close(db);
  return ids;
}

std::string Hex(const IdDigest& d) {
  static const char kHex[] = "0123456789abcdef";
  std::string h;
  for (unsigned char c : d) h += {kHex[c >> 4], kHex[c & 15]};
  return h;
}

// The same on PostgreSQL: `n` sessions of one item each, in multi-row
// INSERTs (a million statements one by one would take minutes), with the
// server's clock as the store's.
std::vector<std::string> PopulatePg(pg::Conn& conn, std::size_t n) {
  conn.Exec("TRUNCATE sessions, items");
  std::vector<std::string> ids;
  ids.reserve(n);
  const std::size_t kBatch = 5000;
  for (std::size_t k = 0; k < n;) {
    std::string sql = "INSERT INTO sessions SELECT d, t, t, t + 86400 FROM (VALUES ";
    for (std::size_t b = 0; b < kBatch && k < n; ++b, ++k) {
      ids.push_back(NewSessionId());
      sql += (b ? ",('\\x" : "('\\x") + Hex(DigestOf(ids.back())) + "'::bytea)";
    }
    sql += ") v(d), (SELECT extract(epoch FROM now())::bigint AS t) n";
    conn.Exec(sql.c_str());
  }
  conn.Exec("INSERT INTO items SELECT id_hash, convert_to('UserName', 'UTF8'), "
            "convert_to('user' || md5(id_hash::text), 'UTF8') FROM sessions");
  conn.Exec("VACUUM ANALYZE sessions, items");
  return ids;
}

// Load and commit latency on PostgreSQL with `n` sessions: one row.
int LoadsPg(const std::string& uri, std::size_t n, std::mt19937_64& rng) {
  StoreOptions o;
  o.db = uri;
  auto opened = OpenStore(o);  // creates the schema
  SessionStore& store = *opened;
  pg::Conn conn(pg::ConnOptions{uri, 600'000});
  std::vector<std::string> ids = PopulatePg(conn, n);
  std::uniform_int_distribution<std::size_t> pick(0, n - 1);
  const std::int64_t now = std::time(nullptr);  // unused: the server's clock is the store's
  for (int k = 0; k < 20000; ++k) (void)store.Load(ids[pick(rng)], now);
  std::vector<double> loads;
  for (int k = 0; k < 20000; ++k) {
    auto t0 = Clock::now();
    auto s = store.Load(ids[pick(rng)], now);
    loads.push_back(Micros(Clock::now() - t0));
    if (!s) return std::fprintf(stderr, "store_bench: a session was not found\n"), 1;
  }
  std::vector<double> commits = TimeCommits(store, ids, pick, rng, now);
  Stats l = Summarize(loads), c = Summarize(commits);
  std::printf("| %zu | server's | %.1f | %.1f | %.0f | %.1f | %.1f | %.0f | – | – |\n", n, l.p50, l.p99,
              l.per_second, c.p50, c.p99, c.per_second);
  std::fflush(stdout);
  conn.Exec("TRUNCATE sessions, items");
  return 0;
}

std::int64_t DataVersion(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &s, nullptr);
  sqlite3_step(s);
  std::int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

// THREADS threads, each with its own store, each committing COMMITS times
// to a session of its own: one row of a Markdown table.
int Writers(const std::string& dir, int threads, int commits, bool one_session = false) {
  bool pg = IsPostgresUri(dir);
  std::string path = pg ? dir : dir + "/writers.db";
  if (!pg)
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  StoreOptions o;
  o.db = path;
  const std::int64_t now = std::time(nullptr);
  std::vector<std::unique_ptr<SessionStore>> stores;
  std::vector<std::string> ids;
  for (int t = 0; t < threads; ++t) {
    stores.push_back(OpenStore(o));
    ids.push_back(one_session && t > 0
                      ? ids.front()
                      : stores.back()->Commit(std::nullopt, ChangeSet{{{Change::Kind::Set, "k", "v", {}}}}, now).id);
  }
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(threads));
  std::vector<std::thread> running;
  auto t0 = Clock::now();
  for (int t = 0; t < threads; ++t)
    running.emplace_back([&, t] {
      auto u = static_cast<std::size_t>(t);
      auto s = stores[u]->Load(ids[u], now);
      for (int k = 0; k < commits; ++k) {
        ChangeSet cs;
        cs.changes.push_back({Change::Kind::Set, "k" + std::to_string(one_session ? t : k % 8), std::to_string(k), {}});
        auto c0 = Clock::now();
        stores[u]->Commit(s, cs, now);
        latencies[u].push_back(Micros(Clock::now() - c0));
      }
    });
  for (auto& r : running) r.join();
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  Stats c = Summarize(all);
  std::printf("| writers | sessions | commits | synchronous | commits/s | commit p50 µs | commit p99 µs |\n");
  std::printf("| ---: | ---: | ---: | --- | ---: | ---: | ---: |\n");
  std::printf("| %d | %d | %zu | %s | %.0f | %.1f | %.1f |\n", threads, one_session ? 1 : threads, all.size(),
              pg ? "server's" : "FULL",
              static_cast<double>(all.size()) / seconds, c.p50, c.p99);
  stores.clear();
  if (!pg)
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: store_bench DIR [SESSIONS...]\n");
    return 2;
  }
  if (!IsPostgresUri(argv[1])) std::filesystem::create_directories(argv[1]);
  if (argc >= 3 && std::string(argv[2]) == "--writers")
    return Writers(argv[1], argc >= 4 ? std::stoi(argv[3]) : 16, argc >= 5 ? std::stoi(argv[4]) : 200,
                   argc >= 6 && std::string(argv[5]) == "one");
  std::vector<std::size_t> sizes;
  for (int a = 2; a < argc; ++a) sizes.push_back(std::stoul(argv[a]));
  if (sizes.empty()) sizes = {10'000, 100'000, 1'000'000};
  const std::int64_t now = std::time(nullptr);
  std::mt19937_64 rng(42);

  std::printf("| sessions | synchronous | load p50 µs | load p99 µs | loads/s | commit p50 µs | commit p99 µs "
              "| commits/s | file bytes/session | commits by 1000 reads |\n");
  std::printf("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  if (IsPostgresUri(argv[1])) {
    for (std::size_t n : sizes)
      if (int rc = LoadsPg(argv[1], n, rng)) return rc;
    std::printf("\n");
    return Writers(argv[1], 16, 200);
  }
  for (std::size_t n : sizes) {
    std::string path = std::string(argv[1]) + "/store-" + std::to_string(n) + ".db";
    std::vector<std::string> ids = Populate(path, n, now);
    struct stat st {};
    stat(path.c_str(), &st);
    double bytes_per_session = static_cast<double>(st.st_size) / static_cast<double>(n);
    for (const char* sync : {"FULL", "NORMAL"}) {
      StoreOptions o;
      o.db = path;
      o.synchronous = sync;
      auto opened = OpenStore(o);
      SessionStore& store = *opened;
      std::uniform_int_distribution<std::size_t> pick(0, n - 1);

      // Warm-up: a server that has run a while has the file mapped; measure that.
      for (int k = 0; k < 20000; ++k) (void)store.Load(ids[pick(rng)], now);
      std::vector<double> loads;
      for (int k = 0; k < 20000; ++k) {
        const std::string& id = ids[pick(rng)];
        auto t0 = Clock::now();
        auto s = store.Load(id, now);
        loads.push_back(Micros(Clock::now() - t0));
        if (!s) return std::fprintf(stderr, "store_bench: a session was not found\n"), 1;
      }
      std::vector<double> commits = TimeCommits(store, ids, pick, rng, now);
      // Reads within the touch window: another connection counts the commits.
      sqlite3* watcher = nullptr;
      sqlite3_open(path.c_str(), &watcher);
      std::int64_t before = DataVersion(watcher);
      for (int k = 0; k < 1000; ++k) store.Commit(store.Load(ids[pick(rng)], now), ChangeSet{}, now);
      int read_writes = DataVersion(watcher) != before;
      sqlite3_close(watcher);

      Stats l = Summarize(loads), c = Summarize(commits);
      std::printf("| %zu | %s | %.1f | %.1f | %.0f | %.1f | %.1f | %.0f | %.0f | %s |\n", n, sync, l.p50, l.p99,
                  l.per_second, c.p50, c.p99, c.per_second, bytes_per_session, read_writes ? "some" : "0");
      std::fflush(stdout);
    }
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
  }
  std::printf("\n");
  return Writers(argv[1], 16, 200);
}
