// Value types shared by the store and the request path: a session, its items,
// and the set of changes one page response asks for.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

// Key -> value. Both are byte strings; neither is interpreted by the store.
using Items = std::map<std::string, std::string>;

// An item's type, kept beside its value (never inside it), so every language
// reads the value as it is: a string (the default: bytes, as the page gave
// them) or JSON (the value is JSON text, RFC 8259: `3`, `{"apple":1}`, which
// a page that knows the type decodes, and any other reads as text).
enum class ItemType { String, Json };

// The keys of a session's Items whose values are JSON text; every other
// item is a string. A key here is always a key of the items beside it.
using JsonKeys = std::set<std::string, std::less<>>;

// The store's and the commands' name of a type: "string" or "json".
const char* TypeName(ItemType type);

// A live session as loaded from the store. `id` is the clear id (the cookie
// value); the store itself only ever keeps its digest.
struct Session {
  std::string id;
  Items items;
  JsonKeys json;              // which of `items` are JSON
  std::int64_t created = 0;   // unix seconds
  std::int64_t accessed = 0;  // last access the store recorded (refreshed lazily)
  std::int64_t now = 0;       // the store's clock when it was loaded (see backend.h)
  // Loaded through a regenerated id still in its rotation grace: `id` is the
  // session's new id, not the one asked for, and the client must be sent it.
  bool forwarded = false;
};

// One change to a session's items, applied in the order the page gave them.
// A Set carries the value and its type together: a Set of a string over a
// JSON item makes it a string again. Replace (mod_session's
// X-Replace-Session) sets strings only.
struct Change {
  enum class Kind { Set, Remove, Clear, Replace };
  Kind kind;
  std::string key;    // Set, Remove
  std::string value;  // Set
  Items items;        // Replace: the whole new item set
  ItemType type = ItemType::String;  // Set
  JsonKeys json = {};  // Replace: which of `items` are JSON (KeepLoadedTypes); the rest are strings
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

// Folds `changes` into `items` and their types `json` in order (Set,
// Remove, Clear, Replace).
void Apply(const std::vector<Change>& changes, Items& items, JsonKeys& json);

// mod_session's X-Replace-Session gives the whole session back as text, with
// no types: an item it gives back byte for byte as `loaded` held it keeps
// that item's type (a JSON item stays JSON), every other is a string. So a
// mod_session page that writes back what it read turns no PHP array into its
// JSON text. Returns `asked` itself when it has no Replace, else `copy`
// filled with the typed changes.
const ChangeSet& KeepLoadedTypes(const ChangeSet& asked, const Session& loaded, ChangeSet& copy);

// Whether `text` is one JSON value, RFC 8259 (whitespace around it allowed;
// strings of valid UTF-8; nesting at most 512 deep): what a JSON item's
// value must be. No other byte is allowed, NUL included.
bool IsJsonText(std::string_view text);

}  // namespace sessiond
