// Inspection and upkeep of a session store: what the operator's commands
// (sessiond list, show, rm, logout, gc, stats, check, backup) ask of it, as
// opposed to what the request path asks (store.h). SqlAdmin (sql_admin.h)
// implements it once over each engine's dialect: sqlite/sqlite_admin.h,
// postgres/pg_admin.h.
//
// A session is named by the digest of its id, never by the id (the store does
// not have it). Live means what the server's garbage collector means: the
// stored expiry, min(last access + idle timeout, created + absolute timeout)
// as the server recorded it, is later than `now` (sql::Unexpired, liveness.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/session.h"
#include "store/session_id.h"
#include "store/backend.h"
#include "store/store.h"

namespace sessiond {

// One stored session, as the commands show it.
struct SessionSummary {
  IdDigest digest{};
  std::int64_t created = 0;   // unix seconds
  std::int64_t accessed = 0;  // last access the store recorded
  std::int64_t expires = 0;   // the stored expiry; expired when <= now
  std::size_t items = 0;      // how many items
  std::size_t bytes = 0;      // their keys and values, as the session limits count them

  // sql::Expired (liveness.h) for a row already read: the stored expiry has come.
  bool ExpiredAt(std::int64_t now) const { return expires <= now; }
};

// A session with its items.
struct SessionDetail {
  SessionSummary summary;
  Items items;
  JsonKeys json;  // which of `items` are JSON (store/session.h ItemType)
};

// An item a session must hold, key and value byte for byte.
struct ItemMatch {
  std::string key;
  std::string value;
};

struct ListQuery {
  enum class Which { Live, Expired, All };
  Which which = Which::Live;
  std::vector<ItemMatch> where;  // the session holds every one of them
  std::size_t limit = 0;         // at most this many, newest first; 0: all
};

// A sessiond serve the store has seen (store.h's Member).
struct MemberStatus {
  Member member;
  bool running = false;  // seen within kSeenWithin, by the store's clock
};

// Where the store is in a rolling upgrade (sessiond migrate).
struct UpgradeStatus {
  SchemaLevel level;              // stored
  int known = 0;                  // the schema version this sessiond knows
  std::vector<int> pending;       // `needs` of each contract step this sessiond would run
  std::vector<MemberStatus> members;
};

// What `sessiond migrate --finish` did.
struct FinishResult {
  enum class Outcome { Nothing, Finished, Refused };
  Outcome outcome = Outcome::Nothing;
  std::string why;    // Refused: why, naming the members in the way
  int required = 0;   // Finished: the store's new required version
  std::size_t steps = 0;  // Finished: contract steps run
};

struct StoreStats {
  std::size_t live = 0;     // sessions
  std::size_t expired = 0;  // sessions past their expiry, not yet collected
  std::size_t items = 0;    // items of every stored session
  std::size_t bytes = 0;    // their keys and values
  std::optional<std::int64_t> oldest;  // creation time of the oldest live session
  int schema_version = 0;   // of the stored schema
  std::int64_t file_bytes = 0;  // the store's size on disk (SQLite: the main file)
  std::int64_t free_bytes = 0;  // of which unused (SQLite: free pages, VACUUM returns them)
  std::int64_t wal_bytes = 0;   // SQLite: the -wal file; 0 when the store has none
  std::int64_t schema_required = 0;     // the lowest schema version a sessiond needs (SchemaLevel)
  std::vector<MemberStatus> members;    // the sessionds serving the store, by name
};

// Thread-safety: one instance per thread. Every method is one short
// transaction or a series of them, so a server on the same store never waits
// on a command for longer than one batch. Reads never write.
// Throws StoreError when the store fails (busy past the busy timeout, I/O
// error, corrupt data, or a write on an instance opened for reading only).
class SessionAdmin {
 public:
  virtual ~SessionAdmin() = default;

  // The sessions `query` selects, newest (by creation) first. Read in one
  // transaction and returned whole, so printing them holds nothing open.
  virtual std::vector<SessionSummary> List(const ListQuery& query, std::int64_t now) = 0;

  // The digests that begin with the hex digits `prefix` (lowercase, 1 to 64
  // of them), in order, at most `limit`.
  virtual std::vector<IdDigest> FindByPrefix(std::string_view prefix, std::size_t limit) = 0;

  // The session with this digest, live or expired; nullopt when there is none.
  virtual std::optional<SessionDetail> Get(const IdDigest& digest) = 0;

  // Deletes these sessions and their items; returns how many existed.
  virtual std::size_t Remove(const std::vector<IdDigest>& digests) = 0;

  // Deletes every session holding all the items of `where` (not empty), in
  // batches; returns how many. A session that stops matching before its batch
  // is kept. It looks again after each round of deletes until it finds no
  // match, so a session that moved meanwhile (regenerated to a new id), or
  // that began to match, is deleted too: when it returns, no session held
  // the items at its last look. (After a few rounds that each found some, the
  // last is one delete by the items themselves, which nothing can slip past.)
  virtual std::size_t RemoveWhere(const std::vector<ItemMatch>& where) = 0;

  // Deletes the sessions expired at `now`, `batch` per transaction; returns
  // how many. Between two transactions the server's writers waiting for the
  // store get their turn: one waits at most for one batch.
  virtual std::size_t CollectGarbage(std::int64_t now, std::size_t batch) = 0;

  virtual StoreStats Stats(std::int64_t now) = 0;

  // Checks the store's integrity (a full check, or a quicker one that skips
  // cross-checking indexes against their tables), its schema version, and
  // items without a session. Returns one line per problem; empty when all is
  // well. Corruption found on the way is reported, not thrown.
  virtual std::vector<std::string> Check(bool quick) = 0;

  // The rolling upgrade: the store's schema level, the contract steps this
  // sessiond would run, the members seen.
  virtual UpgradeStatus Upgrade(std::int64_t now) = 0;
  // Runs the contract steps this sessiond has that the store has not had
  // (backend.h, ContractStep), in one transaction, and raises the store's
  // required version; refuses (nothing changed) while a member of an older
  // schema is running, when the store is not expanded to this sessiond's
  // version yet, or when a newer sessiond expanded it (finish with that one).
  virtual FinishResult Finish(std::int64_t now) = 0;

  // Writes a consistent copy of the store to the new file `path`, created with
  // mode 0600. Throws StoreError when `path` exists (it is never overwritten);
  // on any failure nothing is left at `path`.
  virtual void Backup(const std::string& path) = 0;
};

// The first 8 hex digits of a digest: a session's name in conversation (list,
// logs, tickets), which does not reveal it.
std::string TagOf(const IdDigest& digest);

// The digests that begin with a hex `prefix` are those from `low` (the prefix
// padded with zeros) up to, not including, `high` (the next prefix of the
// same length): a range of the primary key, not a scan. A prefix of all f's
// has no upper end (bounded false). Throws std::invalid_argument unless the
// prefix is 1 to 64 lowercase hex digits. For the engines' FindByPrefix.
struct DigestRange {
  std::string low, high;  // bytes
  bool bounded = true;
};
DigestRange PrefixRange(std::string_view prefix);

// All 64 hex digits, lowercase.
std::string HexOf(const IdDigest& digest);

// What an operator typed to name a session, resolved.
struct SessionRef {
  enum class Kind {
    Found,      // `digest` is the session
    NotFound,   // well-formed, but no stored session matches
    Ambiguous,  // a digest prefix that several sessions share: `candidates` (at most 10)
    Malformed,  // neither an id nor a digest prefix
  };
  Kind kind = Kind::NotFound;
  IdDigest digest{};
  std::vector<IdDigest> candidates;
  bool more = false;  // Ambiguous: there are more candidates than listed
};

// Shortest digest prefix accepted, as with git's abbreviated hashes.
inline constexpr std::size_t kMinPrefixDigits = 4;

// Resolves `text`: a session id as in the cookie (43 characters, digested),
// or the first 4 to 64 hex digits of a digest (either case).
SessionRef FindSession(SessionAdmin& admin, std::string_view text);

}  // namespace sessiond
