// The registry of stores the conformance suite (store_conformance_test.cc)
// runs against: every engine registers one factory, in a file of its own
// (store_factory_sqlite.cc, ...), and every engine-agnostic store test runs
// once per engine, named after it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/admin.h"
#include "store/open.h"
#include "store/store.h"

namespace sessiond::testing {

struct StoreFactory {
  std::string name;  // as a failure names the engine: "sqlite", "postgres"
  // A store on the engine's test database, with the timeouts, limits and busy
  // timeout of `options` (options.db is ignored: the factory knows its own).
  // Its clock is the caller's: the `now` the tests pass is the one it uses.
  std::function<std::unique_ptr<SessionStore>(const StoreOptions&)> open;
  // The operator's interface on the same database, writable: the tests count
  // rows and remove sessions through it, as another request or process would.
  std::function<std::unique_ptr<SessionAdmin>(const StoreOptions&)> admin;
  // Makes the test database empty. Called before each test, when no store or
  // admin of the previous one is open any more.
  std::function<void()> reset;
};

// Every registered factory, in registration order.
std::vector<StoreFactory>& StoreFactories();

// At namespace scope in an engine's factory file:
//   const RegisterStore kRegistered{StoreFactory{"sqlite", open, admin, reset}};
struct RegisterStore {
  explicit RegisterStore(StoreFactory f) { StoreFactories().push_back(std::move(f)); }
};

}  // namespace sessiond::testing
