// Value types shared by the store and the request path: a session, its items,
// and the set of changes one page response asks for.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sessiond {

// Key -> value. Both are byte strings; neither is interpreted by the store.
using Items = std::map<std::string, std::string>;

// A live session as loaded from the store. `id` is the clear id (the cookie
// value); the store itself only ever keeps its digest.
struct Session {
  std::string id;
  Items items;
  std::int64_t created = 0;   // unix seconds
  std::int64_t accessed = 0;  // last access the store recorded (refreshed lazily)
  std::int64_t now = 0;       // the store's clock when it was loaded (see backend.h)
  // Loaded through a regenerated id still in its rotation grace: `id` is the
  // session's new id, not the one asked for, and the client must be sent it.
  bool forwarded = false;
};

// One change to a session's items, applied in the order the page gave them.
struct Change {
  enum class Kind { Set, Remove, Clear, Replace };
  Kind kind;
  std::string key;    // Set, Remove
  std::string value;  // Set
  Items items;        // Replace: the whole new item set
};

// Everything one response asks of its session. Applied atomically or not at all.
struct ChangeSet {
  std::vector<Change> changes;
  bool abandon = false;     // delete the session; wins over every other change
  // Move the session to a fresh id; the old id dies at once, or when its
  // rotation grace ends (StoreTimeouts::grace).
  bool regenerate = false;

  bool empty() const { return changes.empty() && !abandon && !regenerate; }
};

// Size limits on what a session may hold. Exceeding one is a LimitError.
struct SessionLimits {
  std::size_t max_key_bytes = 256;
  std::size_t max_value_bytes = 64 * 1024;
  std::size_t max_items = 1024;
  std::size_t max_session_bytes = 1024 * 1024;  // sum of key and value bytes
};

// Folds `changes` into `items` in order (Set, Remove, Clear, Replace).
void Apply(const std::vector<Change>& changes, Items& items);

}  // namespace sessiond
