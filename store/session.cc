#include "store/session.h"

namespace sessiond {

void Apply(const std::vector<Change>& changes, Items& items) {
  for (const Change& c : changes) {
    switch (c.kind) {
      case Change::Kind::Set: items[c.key] = c.value; break;
      case Change::Kind::Remove: items.erase(c.key); break;
      case Change::Kind::Clear: items.clear(); break;
      case Change::Kind::Replace: items = c.items; break;
    }
  }
}

}  // namespace sessiond
