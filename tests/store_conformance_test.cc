// What every store engine must do alike: the session policy over each
// registered backend (tests/store_factories.h). Each test runs once per
// engine, in a section named after it ("engine sqlite"), so a failure says
// which engine failed. Engine-specific behaviour (files, locks, migrations)
// is tested beside the engine (sqlite_store_test.cc, ...).
#include <catch2/catch.hpp>
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/session_id.h"
#include "tests/store_factories.h"
#include "tests/temp_db.h"

namespace sessiond::testing {

std::vector<StoreFactory>& StoreFactories() {
  static std::vector<StoreFactory> factories;
  return factories;
}

}  // namespace sessiond::testing

using namespace sessiond;
using namespace sessiond::testing;
using Kind = Change::Kind;

namespace {

constexpr std::int64_t T0 = 1'800'000'000;

// One engine's store under test, with what the tests need beside the store.
struct Engine {
  const StoreFactory& factory;

  // Idle 600 s (so a read refreshes the last access after 60 s), absolute 3600 s.
  StoreOptions options() const {
    StoreOptions o;
    o.timeouts.idle = 600;
    o.timeouts.absolute = 3600;
    return o;
  }
  std::unique_ptr<SessionStore> open(const StoreOptions& o) const { return factory.open(o); }
  std::unique_ptr<SessionStore> open() const { return open(options()); }
  // The same store without a rotation grace (--regenerate-grace 0).
  std::unique_ptr<SessionStore> open_without_grace() const {
    StoreOptions o = options();
    o.timeouts.grace = 0;
    return open(o);
  }

  // Stored sessions, alive or expired but not yet collected.
  std::size_t sessions() const {
    StoreStats s = factory.admin(options())->Stats(T0);
    return s.live + s.expired;
  }
  std::size_t items() const { return factory.admin(options())->Stats(T0).items; }
  // Deletes the session as another request's abandon or an operator's rm would.
  void remove(const std::string& id) const { factory.admin(options())->Remove({DigestOf(id)}); }
};

// Runs `body` once per registered engine, on an empty store, in a section
// named after the engine.
template <class Body>
void ForEachEngine(Body&& body) {
  REQUIRE_FALSE(StoreFactories().empty());
  for (const StoreFactory& f : StoreFactories()) {
    DYNAMIC_SECTION("engine " << f.name) {
      f.reset();
      Engine engine{f};
      body(engine);
    }
  }
}

}  // namespace

TEST_CASE("a new visitor gets a session only when something is stored", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    CHECK(store->Commit(std::nullopt, ChangeSet{}, T0).outcome == CommitResult::Outcome::Unchanged);
    ChangeSet removes;
    removes.changes.push_back({Kind::Remove, "a", {}, {}});
    removes.changes.push_back({Kind::Clear, {}, {}, {}});
    CHECK(store->Commit(std::nullopt, removes, T0).outcome == CommitResult::Outcome::Unchanged);
    ChangeSet abandon = Sets({{"k", "v"}});
    abandon.abandon = true;
    CHECK(store->Commit(std::nullopt, abandon, T0).outcome == CommitResult::Outcome::Unchanged);
    CHECK(e.sessions() == 0);

    CommitResult r = store->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0);
    REQUIRE(r.outcome == CommitResult::Outcome::Created);
    CHECK(IsWellFormedId(r.id));
    auto s = store->Load(r.id, T0 + 1);
    REQUIRE(s);
    CHECK(s->id == r.id);
    CHECK(s->items == Items{{"UserName", "ann"}});
    CHECK(s->created == T0);
    CHECK(s->accessed == T0);
    CHECK(s->now == T0 + 1);  // the clock the store used: the caller's, in these tests
  });
}

TEST_CASE("unknown, malformed and expired ids load as nothing", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    CHECK_FALSE(store->Load(NewSessionId(), T0));
    CHECK_FALSE(store->Load("not-an-id", T0));
    CHECK_FALSE(store->Load("", T0));
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    CHECK(store->Load(id, T0 + 599));
    CHECK_FALSE(store->Load(id, T0 + 600));  // idle timeout
    // Kept in use, it still ends at the absolute timeout.
    for (std::int64_t now = T0 + 300; now < T0 + 3600; now += 300) {
      auto s = store->Load(id, now);
      REQUIRE(s);
      store->Commit(s, ChangeSet{}, now);
    }
    CHECK_FALSE(store->Load(id, T0 + 3600));
  });
}

TEST_CASE("an absolute timeout shorter than the idle one bounds a new session", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    StoreOptions o = e.options();
    o.timeouts.absolute = 300;
    auto store = e.open(o);
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    CHECK(store->Load(id, T0 + 299));
    CHECK_FALSE(store->Load(id, T0 + 300));
    CHECK(store->CountLive(T0 + 299) == 1);
    CHECK(store->CountLive(T0 + 300) == 0);  // the stored expiry says so too
  });
}

TEST_CASE("changes of two requests merge per key", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto a = e.open(), b = e.open();  // two connections, as two workers or processes
    std::string id = a->Commit(std::nullopt, Sets({{"x", "0"}}), T0).id;
    auto seen_by_a = a->Load(id, T0);
    auto seen_by_b = b->Load(id, T0);
    a->Commit(seen_by_a, Sets({{"left", "1"}, {"x", "a"}}), T0);
    b->Commit(seen_by_b, Sets({{"right", "2"}, {"x", "b"}}), T0);
    auto s = a->Load(id, T0);
    REQUIRE(s);
    CHECK(s->items == Items{{"left", "1"}, {"right", "2"}, {"x", "b"}});  // later commit wins x
  });
}

TEST_CASE("remove, clear and replace apply in order", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}}), T0).id;
    ChangeSet cs;
    cs.changes.push_back({Kind::Remove, "a", {}, {}});
    store->Commit(store->Load(id, T0), cs, T0);
    CHECK(store->Load(id, T0)->items == Items{{"b", "2"}, {"c", "3"}});

    cs.changes = {{Kind::Replace, {}, {}, {{"r", "1"}}}, {Kind::Set, "s", "2", {}}};
    store->Commit(store->Load(id, T0), cs, T0);
    CHECK(store->Load(id, T0)->items == Items{{"r", "1"}, {"s", "2"}});

    cs.changes = {{Kind::Set, "t", "1", {}}, {Kind::Remove, "t", {}, {}}, {Kind::Set, "u", "1", {}},
                  {Kind::Set, "u", "2", {}}};
    store->Commit(store->Load(id, T0), cs, T0);
    CHECK(store->Load(id, T0)->items == Items{{"r", "1"}, {"s", "2"}, {"u", "2"}});

    cs.changes = {{Kind::Clear, {}, {}, {}}};
    CHECK(store->Commit(store->Load(id, T0), cs, T0).outcome == CommitResult::Outcome::Updated);
    auto s = store->Load(id, T0);
    REQUIRE(s);  // a cleared session lives on, empty
    CHECK(s->items.empty());
    CHECK(e.sessions() == 1);
    CHECK(e.items() == 0);
  });
}

TEST_CASE("values are bytes, byte for byte", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string binary("a\0b\xff", 4), key_bytes("k\0\xfe", 3);
    std::string id =
        store->Commit(std::nullopt, Sets({{"bin", binary}, {"txt", "héllo"}, {"empty", ""}, {key_bytes, "x"}}), T0)
            .id;
    auto s = store->Load(id, T0);
    REQUIRE(s);
    CHECK(s->items.at("bin") == binary);
    CHECK(s->items.at("txt") == "héllo");
    CHECK(s->items.at("empty").empty());
    CHECK(s->items.at(key_bytes) == "x");
    CHECK(s->items.size() == 4);
  });
}

// mod_session's X-Replace-Session names no types: a page that writes back
// what it read must not turn a PHP array into its JSON text.
TEST_CASE("a replace keeps the type of an item it gives back as loaded", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    ChangeSet first = Sets({{"name", "ann"}});
    first.changes.push_back({Kind::Set, "cart", R"({"apple":1})", {}, ItemType::Json});
    first.changes.push_back({Kind::Set, "visits", "3", {}, ItemType::Json});
    std::string id = store->Commit(std::nullopt, first, T0).id;
    // Given back: cart as it was (JSON still), visits changed (a string now),
    // name as it was (a string), and a new item (a string).
    ChangeSet replace;
    replace.changes.push_back(
        {Kind::Replace, {}, {}, Items{{"cart", R"({"apple":1})"}, {"visits", "4"}, {"name", "ann"}, {"x", "[]"}}});
    REQUIRE(store->Commit(store->Load(id, T0 + 1), replace, T0 + 1).outcome == CommitResult::Outcome::Updated);
    auto s = store->Load(id, T0 + 2);
    REQUIRE(s);
    CHECK(s->items.size() == 4);
    CHECK(s->json == JsonKeys{"cart"});
    // The same through the unit of work (under exclusive mode's lock).
    REQUIRE(store->TryLock(id, "me", 30, T0 + 2) == SessionStore::LockOutcome::Taken);
    ChangeSet again;
    again.changes.push_back({Kind::Replace, {}, {}, Items{{"cart", R"({"apple":1})"}}});
    REQUIRE(store->CommitHolding(store->Load(id, T0 + 2), again, T0 + 2, "me").outcome ==
            CommitResult::Outcome::Updated);
    s = store->Load(id, T0 + 3);
    CHECK(s->items == Items{{"cart", R"({"apple":1})"}});
    CHECK(s->json == JsonKeys{"cart"});
    // A new visitor's replace has nothing loaded: strings.
    ChangeSet fresh;
    fresh.changes.push_back({Kind::Replace, {}, {}, Items{{"cart", R"({"apple":1})"}}});
    auto n = store->Load(store->Commit(std::nullopt, fresh, T0 + 3).id, T0 + 3);
    REQUIRE(n);
    CHECK(n->json.empty());
  });
}

TEST_CASE("an item's type is kept beside its value and merges with it per key", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    auto json = [](const std::string& k, const std::string& v) {
      return Change{Kind::Set, k, v, {}, ItemType::Json};
    };
    // A new session: JSON and string items, the type folded in order.
    ChangeSet first = Sets({{"name", "ann"}, {"visits", "1"}});
    first.changes.push_back(json("visits", "3"));
    first.changes.push_back(json("cart", R"({"apple":1})"));
    first.changes.push_back(json("gone", "true"));
    first.changes.push_back({Kind::Remove, "gone", {}, {}});
    std::string id = store->Commit(std::nullopt, first, T0).id;
    auto s = store->Load(id, T0);
    REQUIRE(s);
    CHECK(s->items == Items{{"name", "ann"}, {"visits", "3"}, {"cart", R"({"apple":1})"}});
    CHECK(s->json == JsonKeys{"cart", "visits"});

    // Two requests of the session: one sets a string over a JSON item (a
    // string again), the other a JSON item over a string; both keep theirs.
    auto a = store->Load(id, T0 + 1), b = store->Load(id, T0 + 1);
    REQUIRE(store->Commit(a, Sets({{"visits", "4"}}), T0 + 1).outcome == CommitResult::Outcome::Updated);
    ChangeSet other;
    other.changes.push_back(json("name", R"("ann")"));
    REQUIRE(store->Commit(b, other, T0 + 1).outcome == CommitResult::Outcome::Updated);
    s = store->Load(id, T0 + 2);
    CHECK(s->items == Items{{"name", R"("ann")"}, {"visits", "4"}, {"cart", R"({"apple":1})"}});
    CHECK(s->json == JsonKeys{"cart", "name"});

    // A replace that changes a JSON item's value makes it a string; a
    // regenerate keeps the types.
    ChangeSet replace;
    replace.changes.push_back({Kind::Replace, {}, {}, Items{{"cart", "x"}}});
    replace.changes.push_back(json("n", "[1,2]"));
    replace.regenerate = true;
    CommitResult r = store->Commit(s, replace, T0 + 2);
    REQUIRE(r.outcome == CommitResult::Outcome::Regenerated);
    s = store->Load(r.id, T0 + 3);
    REQUIRE(s);
    CHECK(s->items == Items{{"cart", "x"}, {"n", "[1,2]"}});
    CHECK(s->json == JsonKeys{"n"});

    // The commands see the types too.
    auto shown = e.factory.admin(e.options())->Get(DigestOf(r.id));
    REQUIRE(shown);
    CHECK(shown->json == JsonKeys{"n"});
    // Under exclusive mode's lock, the unit of work stores the type as well.
    REQUIRE(store->TryLock(r.id, "me", 30, T0 + 3) == SessionStore::LockOutcome::Taken);
    ChangeSet locked;
    locked.changes.push_back(json("cart", "null"));
    REQUIRE(store->CommitHolding(s, locked, T0 + 3, "me").outcome == CommitResult::Outcome::Updated);
    CHECK(store->Load(r.id, T0 + 4)->json == JsonKeys{"cart", "n"});
  });
}

TEST_CASE("a read writes only when the last access is due for a refresh", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();  // idle 600 s: refresh after 60 s
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    CHECK(store->Commit(store->Load(id, T0 + 59), ChangeSet{}, T0 + 59).outcome ==
          CommitResult::Outcome::Unchanged);
    CHECK(store->Load(id, T0 + 59)->accessed == T0);
    CHECK(store->Commit(store->Load(id, T0 + 60), ChangeSet{}, T0 + 60).outcome ==
          CommitResult::Outcome::Updated);
    CHECK(store->Load(id, T0 + 61)->accessed == T0 + 60);
    CHECK(store->Load(id, T0 + 659));  // the idle window now counts from T0 + 60
    CHECK_FALSE(store->Load(id, T0 + 660));
  });
}

TEST_CASE("a write refreshes the last access only when it is due, like a read", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();  // refresh after 60 s
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    store->Commit(store->Load(id, T0 + 30), Sets({{"k", "w"}}), T0 + 30);
    auto s = store->Load(id, T0 + 31);
    REQUIRE(s);
    CHECK(s->items.at("k") == "w");
    CHECK(s->accessed == T0);
    store->Commit(store->Load(id, T0 + 90), Sets({{"k", "x"}}), T0 + 90);
    CHECK(store->Load(id, T0 + 91)->accessed == T0 + 90);
  });
}

TEST_CASE("a commit says when it refreshed the last access", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();  // refresh after 60 s
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    CHECK_FALSE(store->Commit(store->Load(id, T0 + 30), ChangeSet{}, T0 + 30).touched);
    CHECK_FALSE(store->Commit(store->Load(id, T0 + 30), Sets({{"k", "w"}}), T0 + 30).touched);
    CHECK(store->Commit(store->Load(id, T0 + 60), ChangeSet{}, T0 + 60).touched);
    CHECK(store->Commit(store->Load(id, T0 + 120), Sets({{"k", "x"}}), T0 + 120).touched);
    // Gone meanwhile: nothing was touched.
    auto loaded = store->Load(id, T0 + 180);
    e.remove(id);
    CHECK_FALSE(store->Commit(loaded, ChangeSet{}, T0 + 180).touched);
  });
}

TEST_CASE("the store sees changes made through another instance", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open(), other = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    REQUIRE(store->Load(id, T0));
    other->Commit(other->Load(id, T0), Sets({{"k", "changed"}}), T0);
    CHECK(store->Load(id, T0)->items.at("k") == "changed");
    e.remove(id);
    CHECK_FALSE(store->Load(id, T0));
  });
}

TEST_CASE("regenerate moves the session to a new id and kills the old", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open_without_grace();
    std::string old_id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    ChangeSet cs = Sets({{"UserName", "bob"}});
    cs.regenerate = true;
    CommitResult r = store->Commit(store->Load(old_id, T0), cs, T0);
    REQUIRE(r.outcome == CommitResult::Outcome::Regenerated);
    CHECK(IsWellFormedId(r.id));
    CHECK(r.id != old_id);
    CHECK_FALSE(store->Load(old_id, T0));
    CHECK_FALSE(store->HoldsExpired(old_id, T0));  // not expired: gone
    auto s = store->Load(r.id, T0);
    REQUIRE(s);
    CHECK(s->items == Items{{"UserName", "bob"}, {"k", "v"}});
    CHECK(s->created == T0);  // the absolute timeout still counts from the first creation
    CHECK(e.sessions() == 1);
    CHECK(e.items() == 2);
  });
}

TEST_CASE("abandon deletes the session and wins over other changes", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    ChangeSet cs = Sets({{"more", "1"}});
    cs.abandon = true;
    cs.regenerate = true;
    CHECK(store->Commit(store->Load(id, T0), cs, T0).outcome == CommitResult::Outcome::Abandoned);
    CHECK_FALSE(store->Load(id, T0));
    CHECK_FALSE(store->HoldsExpired(id, T0));
    CHECK(e.sessions() == 0);
    CHECK(e.items() == 0);
  });
}

TEST_CASE("a session that vanished meanwhile is never revived", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto loaded = store->Load(id, T0);
    e.remove(id);  // abandoned by another request, say
    CommitResult r = store->Commit(loaded, Sets({{"new", "1"}}), T0);
    CHECK(r.outcome == CommitResult::Outcome::Gone);
    CHECK(r.id.empty());
    CHECK(e.sessions() == 0);  // nothing stored, no fresh session

    // The same when the last access was due for a refresh (the touch path):
    // due on the store's clock when it was loaded.
    std::string id2 = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto early = store->Load(id2, T0), late = store->Load(id2, T0 + 100);
    REQUIRE(late);
    e.remove(id2);
    CHECK(store->Commit(late, Sets({{"later", "1"}}), T0 + 100).outcome == CommitResult::Outcome::Gone);
    CHECK(e.sessions() == 0);

    // Every kind of change is refused alike; abandon is what the client wanted anyway;
    // a read changes nothing, touch due or not.
    ChangeSet clear, regenerate, abandon;
    clear.changes.push_back({Kind::Clear, {}, {}, {}});
    regenerate.regenerate = true;
    abandon.abandon = true;
    for (const auto& again : {early, late}) {
      std::int64_t now = again->now;
      CHECK(store->Commit(again, clear, now).outcome == CommitResult::Outcome::Gone);
      CHECK(store->Commit(again, regenerate, now).outcome == CommitResult::Outcome::Gone);
      CHECK(store->Commit(again, abandon, now).outcome == CommitResult::Outcome::Abandoned);
      CHECK(store->Commit(again, ChangeSet{}, now).outcome == CommitResult::Outcome::Unchanged);
    }
    CHECK(e.sessions() == 0);
    CHECK(e.items() == 0);
  });
}

TEST_CASE("a session that expired since it was loaded is gone", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto loaded = store->Load(id, T0 + 599);
    REQUIRE(loaded);
    CHECK(store->Commit(loaded, Sets({{"k", "w"}}), T0 + 600).outcome == CommitResult::Outcome::Gone);
    CHECK(store->Commit(loaded, ChangeSet{}, T0 + 600).outcome == CommitResult::Outcome::Unchanged);
    auto s = store->Load(id, T0);  // as it was: not revived by the late touch either
    REQUIRE(s);
    CHECK(s->items == Items{{"k", "v"}});
    CHECK(s->accessed == T0);
    CHECK_FALSE(store->Load(id, T0 + 600));
  });
}

// A request decides at load whether its commit refreshes the last access;
// the sweep may delete the session before that commit, even when the
// commit's clock is behind the sweep's (two machines of a farm).
TEST_CASE("a touch decided at load never revives a session the sweep deleted", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open(), collector = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto loaded = store->Load(id, T0 + 599);  // alive, and a read would refresh it
    REQUIRE(loaded);
    CHECK(collector->CollectGarbage(T0 + 600, 100) == 1);
    CHECK(store->Commit(loaded, ChangeSet{}, T0 + 599).outcome == CommitResult::Outcome::Unchanged);
    CHECK(store->Commit(loaded, Sets({{"k", "w"}}), T0 + 599).outcome == CommitResult::Outcome::Gone);
    CHECK(e.sessions() == 0);
    CHECK(e.items() == 0);
    CHECK_FALSE(store->Load(id, T0 + 1));
  });
}

TEST_CASE("a write that started before a login does not replace the logged-in session",
          "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto page = e.open_without_grace(), ajax = e.open_without_grace();
    std::string anonymous = page->Commit(std::nullopt, Sets({{"cart", "1"}}), T0).id;
    // AJAX calls start, one when the last access is not due for a refresh, one when it is...
    auto early = ajax->Load(anonymous, T0 + 1), late = ajax->Load(anonymous, T0 + 100);
    ChangeSet login = Sets({{"UserName", "ann"}});
    login.regenerate = true;
    CommitResult logged_in = page->Commit(page->Load(anonymous, T0), login, T0);  // ...a login commits...
    REQUIRE(logged_in.outcome == CommitResult::Outcome::Regenerated);
    // ...and the AJAX call's write, under the old id, comes last.
    for (const auto& seen_by_ajax : {early, late}) {
      CommitResult r = ajax->Commit(seen_by_ajax, Sets({{"cart", "2"}}), seen_by_ajax->now);
      CHECK(r.outcome == CommitResult::Outcome::Gone);
      CHECK(r.id.empty());  // no cookie to send, so the login's cookie stays
    }
    CHECK(e.sessions() == 1);
    auto s = page->Load(logged_in.id, T0 + 100);
    REQUIRE(s);
    CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "1"}});
  });
}

TEST_CASE("a write that started before a logout stores nothing", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto page = e.open(), ajax = e.open();
    std::string id = page->Commit(std::nullopt, Sets({{"UserName", "ann"}}), T0).id;
    auto early = ajax->Load(id, T0 + 1), late = ajax->Load(id, T0 + 100);
    ChangeSet logout;
    logout.abandon = true;
    REQUIRE(page->Commit(page->Load(id, T0), logout, T0).outcome == CommitResult::Outcome::Abandoned);
    for (const auto& seen_by_ajax : {early, late}) {
      std::int64_t now = seen_by_ajax->now;
      CHECK(ajax->Commit(seen_by_ajax, Sets({{"cart", "2"}}), now).outcome == CommitResult::Outcome::Gone);
      CHECK(ajax->Commit(seen_by_ajax, logout, now).outcome == CommitResult::Outcome::Abandoned);
    }
    CHECK(e.sessions() == 0);
    CHECK(e.items() == 0);
  });
}

TEST_CASE("limits refuse the whole change set", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    StoreOptions o = e.options();
    o.limits.max_key_bytes = 8;
    o.limits.max_value_bytes = 16;
    o.limits.max_items = 3;
    o.limits.max_session_bytes = 30;
    auto store = e.open(o);
    std::string id = store->Commit(std::nullopt, Sets({{"a", "1"}}), T0).id;
    auto loaded = store->Load(id, T0);
    CHECK_THROWS_AS(store->Commit(loaded, Sets({{"b", "2"}, {"toolongkey", "x"}}), T0), LimitError);
    CHECK_THROWS_AS(store->Commit(loaded, Sets({{"b", std::string(17, 'x')}}), T0), LimitError);
    CHECK_THROWS_AS(store->Commit(loaded, Sets({{"b", "2"}, {"c", "3"}, {"d", "4"}}), T0), LimitError);
    CHECK_THROWS_AS(
        store->Commit(loaded, Sets({{"b", std::string(16, 'x')}, {"c", std::string(16, 'x')}}), T0),
        LimitError);
    ChangeSet regenerate = Sets({{"b", "2"}, {"c", "3"}, {"d", "4"}});
    regenerate.regenerate = true;
    CHECK_THROWS_AS(store->Commit(store->Load(id, T0 + 100), regenerate, T0 + 100), LimitError);  // touch undone too
    CHECK_THROWS_AS(store->Commit(std::nullopt, Sets({{"", "empty key"}}), T0), LimitError);
    auto s = store->Load(id, T0);
    REQUIRE(s);  // nothing half-written: not the items, not the rename, not the touch
    CHECK(s->items == Items{{"a", "1"}});
    CHECK(s->accessed == T0);
    CHECK_THROWS_AS(store->Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}), T0),
                    LimitError);
    CHECK(e.sessions() == 1);
    // Within the limits, a session may be filled up to them.
    CHECK(store->Commit(loaded, Sets({{"b", "2"}, {"c", "3"}}), T0).outcome == CommitResult::Outcome::Updated);
  });
}

TEST_CASE("limits count what the changes leave, applied in order", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    StoreOptions o = e.options();
    o.limits.max_items = 3;
    o.limits.max_session_bytes = 12;  // six one-byte keys and values
    auto store = e.open(o);
    std::string id = store->Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}}), T0).id;
    auto commit = [&](std::vector<Change> changes) {
      ChangeSet cs;
      cs.changes = std::move(changes);
      return store->Commit(store->Load(id, T0), cs, T0).outcome;
    };
    // A key removed makes room for one set, whichever comes first.
    CHECK(commit({{Kind::Set, "d", "4", {}}, {Kind::Remove, "a", {}, {}}}) == CommitResult::Outcome::Updated);
    CHECK(store->Load(id, T0)->items == Items{{"b", "2"}, {"c", "3"}, {"d", "4"}});
    // A key set again counts once, with its last value.
    CHECK(commit({{Kind::Set, "b", "xx", {}}, {Kind::Set, "b", "y", {}}}) == CommitResult::Outcome::Updated);
    CHECK_THROWS_AS(commit({{Kind::Set, "b", "12345678", {}}}), LimitError);  // 13 bytes
    // A key set and then removed is not there; one removed and then set is.
    CHECK_THROWS_AS(commit({{Kind::Remove, "c", {}, {}}, {Kind::Set, "c", "3", {}}, {Kind::Set, "e", "5", {}}}),
                    LimitError);
    CHECK(commit({{Kind::Set, "e", "5", {}}, {Kind::Remove, "e", {}, {}}}) == CommitResult::Outcome::Updated);
    // What was there before a Clear or a Replace counts no more; what follows does.
    CHECK(commit({{Kind::Clear, {}, {}, {}}, {Kind::Set, "p", "1", {}}, {Kind::Set, "q", "2", {}}}) ==
          CommitResult::Outcome::Updated);
    CHECK_THROWS_AS(commit({{Kind::Replace, {}, {}, {{"r", "1"}, {"s", "2"}}}, {Kind::Set, "t", "3", {}},
                            {Kind::Set, "u", "4", {}}}),
                    LimitError);
    CHECK(commit({{Kind::Set, "t", "3", {}}, {Kind::Replace, {}, {}, {{"r", "1"}, {"s", "2"}}},
                  {Kind::Set, "u", "4", {}}}) == CommitResult::Outcome::Updated);
    CHECK(store->Load(id, T0)->items == Items{{"r", "1"}, {"s", "2"}, {"u", "4"}});
    CHECK(e.items() == 3);
  });
}

TEST_CASE("a session over lowered limits may still shrink, and only shrink", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    std::string id = e.open()->Commit(std::nullopt, Sets({{"a", "1"}, {"b", "2"}, {"c", "3"}}), T0).id;
    StoreOptions o = e.options();
    o.limits.max_items = 1;
    auto store = e.open(o);
    ChangeSet remove;
    remove.changes.push_back({Kind::Remove, "a", {}, {}});
    CHECK(store->Commit(store->Load(id, T0), remove, T0).outcome == CommitResult::Outcome::Updated);
    CHECK_THROWS_AS(store->Commit(store->Load(id, T0), Sets({{"b", "x"}}), T0), LimitError);
    CHECK(store->Load(id, T0)->items == Items{{"b", "2"}, {"c", "3"}});
    ChangeSet down_to_one = Sets({{"d", "4"}});
    down_to_one.changes.insert(down_to_one.changes.begin(), {Kind::Clear, {}, {}, {}});
    CHECK(store->Commit(store->Load(id, T0), down_to_one, T0).outcome == CommitResult::Outcome::Updated);
    CHECK(store->Load(id, T0)->items == Items{{"d", "4"}});
  });
}

TEST_CASE("garbage collection deletes expired sessions in batches", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::vector<std::string> expired;
    for (int i = 0; i < 5; ++i) expired.push_back(store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id);
    std::string live = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0 + 500).id;
    CHECK(store->CountLive(T0 + 600) == 1);
    CHECK(store->HoldsExpired(expired[0], T0 + 600));  // expired, not yet collected
    CHECK(store->CollectGarbage(T0 + 100, 2) == 0);
    CHECK(store->CollectGarbage(T0 + 600, 2) == 2);
    CHECK(store->CollectGarbage(T0 + 600, 2) == 2);
    CHECK(store->CollectGarbage(T0 + 600, 2) == 1);
    CHECK(store->CollectGarbage(T0 + 600, 2) == 0);
    CHECK(store->Load(live, T0 + 600));
    CHECK_FALSE(store->HoldsExpired(expired[0], T0 + 600));
    CHECK_FALSE(store->HoldsExpired(NewSessionId(), T0 + 600));
    CHECK_FALSE(store->HoldsExpired("not-an-id", T0 + 600));
    CHECK(e.sessions() == 1);
    CHECK(e.items() == 1);  // the expired sessions' items went too
  });
}

TEST_CASE("two collectors at once delete every expired session once", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    {
      auto store = e.open();
      for (int i = 0; i < 40; ++i) store->Commit(std::nullopt, Sets({{"k", "v"}}), T0);
    }
    std::size_t counts[2] = {0, 0};
    std::vector<std::thread> collectors;
    for (std::size_t& count : counts)
      collectors.emplace_back([&e, &count] {
        auto store = e.open();
        for (std::size_t n; (n = store->CollectGarbage(T0 + 600, 3)) != 0;) count += n;
      });
    for (auto& t : collectors) t.join();
    CHECK(counts[0] + counts[1] == 40);
    CHECK(e.sessions() == 0);
  });
}

TEST_CASE("many instances committing to one session at once lose no key", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    std::string id = e.open()->Commit(std::nullopt, Sets({{"start", "1"}}), T0).id;
    constexpr int kThreads = 16, kCommits = 40;
    std::vector<std::thread> threads;
    std::vector<std::string> failures(kThreads);
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&e, &id, &failures, t] {
        try {
          auto store = e.open();  // one per thread, as a worker's
          for (int k = 0; k < kCommits; ++k) {
            std::string key = std::to_string(t) + "." + std::to_string(k);
            auto r = store->Commit(store->Load(id, T0 + k), Sets({{key, key}}), T0 + k);
            if (r.outcome != CommitResult::Outcome::Updated) failures[t] = "not updated: " + key;
          }
        } catch (const std::exception& ex) {
          failures[t] = ex.what();
        }
      });
    for (auto& t : threads) t.join();
    for (const std::string& f : failures) CHECK(f == "");
    auto s = e.open()->Load(id, T0 + kCommits);
    REQUIRE(s);
    CHECK(s->items.size() == 1 + kThreads * kCommits);
    for (int t = 0; t < kThreads; ++t)
      for (int k = 0; k < kCommits; ++k) {
        std::string key = std::to_string(t) + "." + std::to_string(k);
        auto it = s->items.find(key);
        CHECK((it != s->items.end() && it->second == key));
      }
  });
}

// The one definition of a live session (store/liveness.h) as each engine's
// statements apply it: dead exactly at its stored expiry, for the request
// path, the live count, the operator's list and stats, and the sweep alike.
TEST_CASE("a session is alive until its expiry, and expired exactly at it, everywhere", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;  // expires T0 + 600
    auto admin = e.factory.admin(e.options());
    using Which = ListQuery::Which;
    auto listed = [&](Which which, std::int64_t now) {
      ListQuery q;
      q.which = which;
      return admin->List(q, now).size();
    };
    const std::int64_t expires = T0 + 600;
    for (std::int64_t now : {expires - 1, expires, expires + 1}) {
      INFO("now = expires " << (now - expires));
      const bool alive = now < expires;
      CHECK(store->Load(id, now).has_value() == alive);
      CHECK(store->CountLive(now) == (alive ? 1 : 0));
      CHECK(listed(Which::Live, now) == (alive ? 1u : 0u));
      CHECK(listed(Which::Expired, now) == (alive ? 0u : 1u));
      CHECK(listed(Which::All, now) == 1u);
      StoreStats st = admin->Stats(now);
      CHECK(st.live == (alive ? 1u : 0u));
      CHECK(st.expired == (alive ? 0u : 1u));
      CHECK(st.oldest == (alive ? std::optional<std::int64_t>(T0) : std::nullopt));
    }
    CHECK(admin->CollectGarbage(expires - 1, 10) == 0);
    CHECK(store->CollectGarbage(expires - 1, 10) == 0);
    CHECK(admin->CollectGarbage(expires, 10) == 1);
    CHECK(e.sessions() == 0);
  });
}

// A session stored under longer timeouts than those in force now (a
// restart with shorter ones) ends for requests under the new ones at once,
// touch and write included, while its stored expiry still counts it as
// live for the operator and the metrics until it comes.
TEST_CASE("shortened timeouts end a stored session for requests, at the boundary", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    std::string id = e.open()->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;  // expires T0 + 600
    StoreOptions idle = e.options(), absolute = e.options();
    idle.timeouts.idle = 300;
    absolute.timeouts.absolute = 200;
    for (const auto& [o, end] : {std::pair{idle, T0 + 300}, std::pair{absolute, T0 + 200}}) {
      auto store = e.open(o);
      auto loaded = store->Load(id, end - 1);
      REQUIRE(loaded);
      CHECK_FALSE(store->Load(id, end));
      CHECK(store->Commit(loaded, Sets({{"k", "w"}}), end).outcome == CommitResult::Outcome::Gone);
      CHECK(store->CountLive(end) == 1);  // the stored expiry, T0 + 600
      ListQuery live;
      CHECK(e.factory.admin(e.options())->List(live, end).size() == 1);
      auto s = store->Load(id, end - 1);  // the late write stored nothing
      REQUIRE(s);
      CHECK(s->items == Items{{"k", "v"}});
    }
  });
}

// The operator's commands do the same on every engine: their logic is
// written once (store/sql_admin.h), over each engine's dialect.
TEST_CASE("admin: list, find, show, rm and logout alike on every engine", "[store][conformance]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string ann = store->Commit(std::nullopt, Sets({{"user", "ann"}, {"role", "admin"}}), T0).id;
    std::string bob = store->Commit(std::nullopt, Sets({{"user", "bob"}}), T0 + 1).id;
    std::string ann2 = store->Commit(std::nullopt, Sets({{"user", "ann"}, {"bin", std::string("\0\xff", 2)}}), T0 + 2).id;
    auto admin = e.factory.admin(e.options());

    ListQuery q;
    q.which = ListQuery::Which::All;
    std::vector<SessionSummary> all = admin->List(q, T0 + 10);
    REQUIRE(all.size() == 3);
    CHECK(all[0].digest == DigestOf(ann2));  // newest first
    CHECK(all[2].digest == DigestOf(ann));
    CHECK(all[2].items == 2);
    CHECK(all[2].bytes == std::string("userannroleadmin").size());
    CHECK(all[0].bytes == 4 + 3 + 3 + 2);  // user, ann, bin, the two bytes
    CHECK(all[2].created == T0);
    CHECK(all[2].accessed == T0);
    CHECK(all[2].expires == T0 + 600);

    q.where = {{"user", "ann"}};
    CHECK(admin->List(q, T0 + 10).size() == 2);
    q.limit = 1;
    std::vector<SessionSummary> newest = admin->List(q, T0 + 10);
    REQUIRE(newest.size() == 1);
    CHECK(newest[0].digest == DigestOf(ann2));
    q.limit = 0;
    q.where = {{"user", "ann"}, {"role", "admin"}};
    CHECK(admin->List(q, T0 + 10).size() == 1);
    q.where = {{"bin", std::string("\0\xff", 2)}};  // byte for byte
    CHECK(admin->List(q, T0 + 10).size() == 1);

    std::string hex = HexOf(DigestOf(bob));
    CHECK(admin->FindByPrefix(hex, 5) == std::vector<IdDigest>{DigestOf(bob)});
    CHECK(admin->FindByPrefix(hex.substr(0, 6), 5) == std::vector<IdDigest>{DigestOf(bob)});
    std::size_t found = 0;  // every session under one of the 16 one-digit prefixes, "f" (unbounded) too
    for (char c : std::string("0123456789abcdef")) found += admin->FindByPrefix(std::string(1, c), 5).size();
    CHECK(found == 3);
    CHECK_THROWS_AS(admin->FindByPrefix("", 5), std::invalid_argument);

    auto shown = admin->Get(DigestOf(ann2));
    REQUIRE(shown);
    CHECK(shown->items == Items{{"user", "ann"}, {"bin", std::string("\0\xff", 2)}});
    CHECK(shown->summary.items == 2);
    CHECK(shown->summary.bytes == 4 + 3 + 3 + 2);
    CHECK(shown->summary.created == T0 + 2);
    CHECK_FALSE(admin->Get(DigestOf(NewSessionId())));

    CHECK(admin->Remove({DigestOf(bob), DigestOf(NewSessionId())}) == 1);  // unknown ones are not counted
    CHECK_FALSE(store->Load(bob, T0 + 10));
    CHECK(admin->RemoveWhere({{"user", "ann"}}) == 2);
    CHECK(e.sessions() == 0);
    CHECK(e.items() == 0);
  });
}

// ---- Rotation grace (--regenerate-grace): after a regenerate, the old id
// leads to the session under its new id for timeouts.grace seconds (10 here).

namespace {

// The session under `id`, regenerated at `now` with `changes`: its new id.
std::string Regenerate(SessionStore& store, const std::string& id, std::int64_t now, ChangeSet changes = {}) {
  changes.regenerate = true;
  CommitResult r = store.Commit(store.Load(id, now), changes, now);
  REQUIRE(r.outcome == CommitResult::Outcome::Regenerated);
  return r.id;
}

}  // namespace

TEST_CASE("grace: the old id leads to the new session until its grace ends", "[store][conformance][grace]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string old_id = store->Commit(std::nullopt, Sets({{"cart", "1"}}), T0).id;
    std::string new_id = Regenerate(*store, old_id, T0, Sets({{"UserName", "ann"}}));
    CHECK(new_id != old_id);
    auto s = store->Load(old_id, T0 + 9);
    REQUIRE(s);
    CHECK(s->id == new_id);  // the client is to be sent this one
    CHECK(s->forwarded);
    CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "1"}});
    CHECK_FALSE(store->Load(new_id, T0 + 9)->forwarded);
    // A write through the old id lands in the new session; nothing is stored under the old one.
    CommitResult r = store->Commit(s, Sets({{"cart", "2"}}), T0 + 9);
    CHECK(r.outcome == CommitResult::Outcome::Updated);
    CHECK(store->Load(new_id, T0 + 9)->items.at("cart") == "2");
    CHECK(e.sessions() == 1);
    // Dead exactly at the end of its grace, and never "expired": it was regenerated.
    CHECK_FALSE(store->Load(old_id, T0 + 10));
    CHECK_FALSE(store->HoldsExpired(old_id, T0 + 10));
    CHECK(store->Load(new_id, T0 + 10));
    // Another instance (another sessiond of the farm) sees the forward too.
    CHECK(e.open()->Load(old_id, T0 + 1)->id == new_id);
  });
}

TEST_CASE("grace: a write that started before a login lands in the logged-in session",
          "[store][conformance][grace]") {
  ForEachEngine([](Engine& e) {
    auto page = e.open(), ajax = e.open();
    std::string anonymous = page->Commit(std::nullopt, Sets({{"cart", "1"}}), T0).id;
    // Two AJAX calls load the anonymous session; a login regenerates it...
    auto first = ajax->Load(anonymous, T0), second = ajax->Load(anonymous, T0);
    std::string logged_in = Regenerate(*page, anonymous, T0 + 1, Sets({{"UserName", "ann"}}));
    // ...the first call's write comes within the grace: kept, in the logged-in
    // session, and the client is told its new id (the login's).
    CommitResult r = ajax->Commit(first, Sets({{"cart", "2"}}), T0 + 5);
    CHECK(r.outcome == CommitResult::Outcome::Updated);
    CHECK(r.id == logged_in);
    // ...the second's comes when the grace has ended: refused, as without a grace.
    r = ajax->Commit(second, Sets({{"cart", "3"}}), T0 + 11);
    CHECK(r.outcome == CommitResult::Outcome::Gone);
    CHECK(r.id.empty());
    CHECK(e.sessions() == 1);
    auto s = page->Load(logged_in, T0 + 11);
    REQUIRE(s);
    CHECK(s->items == Items{{"UserName", "ann"}, {"cart", "2"}});
  });
}

TEST_CASE("grace: an abandon ends the old id with the session", "[store][conformance][grace]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    ChangeSet logout;
    logout.abandon = true;
    // A logout under the new id: the old id within its grace leads nowhere.
    std::string old_id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    std::string new_id = Regenerate(*store, old_id, T0);
    CHECK(store->Commit(store->Load(new_id, T0), logout, T0).outcome == CommitResult::Outcome::Abandoned);
    CHECK_FALSE(store->Load(old_id, T0 + 1));
    // A write that loaded the session before the logout is refused too.
    std::string a = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto before = store->Load(a, T0);
    std::string b = Regenerate(*store, a, T0);
    CHECK(store->Commit(store->Load(b, T0), logout, T0).outcome == CommitResult::Outcome::Abandoned);
    CHECK(store->Commit(before, Sets({{"k", "w"}}), T0 + 1).outcome == CommitResult::Outcome::Gone);
    // A logout through the old id within its grace ends the session under the new one.
    std::string c = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    std::string d = Regenerate(*store, c, T0);
    CHECK(store->Commit(store->Load(c, T0 + 1), logout, T0 + 1).outcome == CommitResult::Outcome::Abandoned);
    CHECK_FALSE(store->Load(d, T0 + 1));
    CHECK_FALSE(store->Load(c, T0 + 1));
    CHECK(e.sessions() == 0);
    CHECK(e.items() == 0);
  });
}

TEST_CASE("grace: a second regenerate chains, and the oldest id keeps only its own window",
          "[store][conformance][grace]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string a = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    std::string b = Regenerate(*store, a, T0);
    // Regenerated again, through its oldest id: the newest id is the one sent.
    std::string c = Regenerate(*store, a, T0 + 5);
    CHECK(store->Load(a, T0 + 9)->id == c);
    CHECK(store->Load(b, T0 + 9)->id == c);
    CHECK_FALSE(store->Load(a, T0 + 10));  // a's grace ended; b's has not
    CHECK(store->Load(b, T0 + 14)->id == c);
    CHECK_FALSE(store->Load(b, T0 + 15));
    auto s = store->Load(c, T0 + 15);
    REQUIRE(s);
    CHECK_FALSE(s->forwarded);
    CHECK(s->items == Items{{"k", "v"}});
    CHECK(e.sessions() == 1);
  });
}

TEST_CASE("grace: the collector deletes forwards whose grace ended, and counts only sessions",
          "[store][conformance][grace]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string old_id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    Regenerate(*store, old_id, T0);
    CHECK(store->CollectGarbage(T0 + 9, 100) == 0);
    CHECK(store->Load(old_id, T0 + 5));  // not yet ended at T0 + 9: kept
    CHECK(store->CollectGarbage(T0 + 10, 100) == 0);
    CHECK_FALSE(store->Load(old_id, T0 + 5));  // deleted: gone even for an earlier clock
    CHECK(e.sessions() == 1);
  });
}

TEST_CASE("grace 0: the old id dies at once, and a write after a login is refused",
          "[store][conformance][grace]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open_without_grace();
    std::string old_id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto before = store->Load(old_id, T0);
    std::string new_id = Regenerate(*store, old_id, T0);
    CHECK_FALSE(store->Load(old_id, T0));
    CHECK(store->Commit(before, Sets({{"k", "w"}}), T0).outcome == CommitResult::Outcome::Gone);
    // Nor does a sessiond without a grace follow the forward of one with it.
    std::string x = e.open()->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    auto with_grace = e.open();
    Regenerate(*with_grace, x, T0);
    CHECK(with_grace->Load(x, T0));
    CHECK_FALSE(store->Load(x, T0));
    CHECK(store->Load(new_id, T0)->items == Items{{"k", "v"}});
  });
}

// --- Exclusive mode's session lock (SESSION_MODE exclusive): TryLock,
// Unlock, CommitHolding.

namespace {
using Lock = SessionStore::LockOutcome;
}  // namespace

TEST_CASE("lock: one holder at a time across instances and a release by a non-holder is harmless",
          "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    auto a = e.open(), b = e.open();  // two connections, as two sessionds
    std::string id = a->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    CHECK(a->TryLock(id, "owner-a", 30, T0) == Lock::Taken);
    CHECK(b->TryLock(id, "owner-b", 30, T0) == Lock::Held);
    CHECK(a->TryLock(id, "owner-a", 30, T0) == Lock::Held);  // not reentrant: one per request
    b->Unlock(id, "owner-b");  // not b's: nothing happens
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 1) == Lock::Held);
    a->Unlock(id, "owner-a");
    a->Unlock(id, "owner-a");  // twice: harmless
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 1) == Lock::Taken);
    b->Unlock(NewSessionId(), "owner-b");  // no such lock at all
    CHECK(a->TryLock(id, "owner-a", 30, T0 + 1) == Lock::Held);
    // Locks of different sessions are independent.
    std::string other = a->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    CHECK(a->TryLock(other, "owner-a", 30, T0 + 1) == Lock::Taken);
  });
}

TEST_CASE("lock: only a live session is locked", "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    CHECK(store->TryLock(NewSessionId(), "o", 30, T0) == Lock::NoSession);
    CHECK(store->TryLock("not-an-id", "o", 30, T0) == Lock::NoSession);
    std::string id = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    CHECK(store->TryLock(id, "o", 30, T0 + 600) == Lock::NoSession);  // idle 600 s: expired
  });
}

TEST_CASE("lock: a lease that ended is taken by the next request", "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    auto a = e.open(), b = e.open();
    std::string id = a->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    CHECK(a->TryLock(id, "owner-a", 30, T0) == Lock::Taken);
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 29) == Lock::Held);
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 30) == Lock::Taken);  // ended at T0 + 30
    CHECK(a->TryLock(id, "owner-a", 30, T0 + 31) == Lock::Held);   // b's now, until T0 + 60
    a->Unlock(id, "owner-a");  // the stalled holder's release does not free b's lock
    CHECK(a->TryLock(id, "owner-a", 30, T0 + 31) == Lock::Held);
  });
}

TEST_CASE("lock: the commit under the lock stores and releases it in one unit", "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    auto a = e.open(), b = e.open();
    std::string id = a->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    REQUIRE(a->TryLock(id, "owner-a", 30, T0) == Lock::Taken);
    auto loaded = a->Load(id, T0);
    CHECK(a->CommitHolding(loaded, Sets({{"n", "1"}}), T0 + 1, "owner-a").outcome ==
          CommitResult::Outcome::Updated);
    CHECK(b->Load(id, T0 + 1)->items == Items{{"n", "1"}});
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 1) == Lock::Taken);  // released by the commit
    // A read under the lock releases it too.
    CHECK(b->CommitHolding(b->Load(id, T0 + 1), ChangeSet{}, T0 + 1, "owner-b").outcome ==
          CommitResult::Outcome::Unchanged);
    CHECK(a->TryLock(id, "owner-a", 30, T0 + 1) == Lock::Taken);
    // Regenerate: the session moves, the old id's lock goes with the commit.
    ChangeSet regenerate;
    regenerate.regenerate = true;
    CommitResult moved = a->CommitHolding(a->Load(id, T0 + 1), regenerate, T0 + 1, "owner-a");
    REQUIRE(moved.outcome == CommitResult::Outcome::Regenerated);
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 1) == Lock::NoSession);
    CHECK(b->TryLock(moved.id, "owner-b", 30, T0 + 1) == Lock::Taken);
    // Abandon.
    ChangeSet abandon;
    abandon.abandon = true;
    CHECK(b->CommitHolding(b->Load(moved.id, T0 + 1), abandon, T0 + 1, "owner-b").outcome ==
          CommitResult::Outcome::Abandoned);
    CHECK_FALSE(a->Load(moved.id, T0 + 1));
    // A new visitor needs no lock: its commit creates a session as Commit does.
    CHECK(a->CommitHolding(std::nullopt, Sets({{"k", "v"}}), T0 + 1, "owner-a").outcome ==
          CommitResult::Outcome::Created);
  });
}

TEST_CASE("lock: a commit whose lease ended stores nothing (fencing)", "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    auto a = e.open(), b = e.open();
    std::string id = a->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    // a stalls past its lease; b takes the lock and stores newer work.
    REQUIRE(a->TryLock(id, "owner-a", 30, T0) == Lock::Taken);
    auto stalled = a->Load(id, T0);
    REQUIRE(b->TryLock(id, "owner-b", 30, T0 + 30) == Lock::Taken);
    CHECK(b->CommitHolding(b->Load(id, T0 + 30), Sets({{"n", "1"}, {"b", "1"}}), T0 + 31, "owner-b").outcome ==
          CommitResult::Outcome::Updated);
    ChangeSet late = Sets({{"n", "stale"}, {"a", "1"}});
    late.changes.push_back({Kind::Remove, "b", {}, {}});
    CHECK(a->CommitHolding(stalled, late, T0 + 32, "owner-a").outcome == CommitResult::Outcome::Fenced);
    CHECK(a->Load(id, T0 + 32)->items == Items{{"b", "1"}, {"n", "1"}});  // nothing of a's
    // Nor an abandon, nor a regenerate.
    ChangeSet abandon;
    abandon.abandon = true;
    CHECK(a->CommitHolding(stalled, abandon, T0 + 32, "owner-a").outcome == CommitResult::Outcome::Fenced);
    CHECK(a->Load(id, T0 + 32));
    // A lease that ended without anyone taking the lock is lost all the same.
    REQUIRE(a->TryLock(id, "owner-a2", 30, T0 + 40) == Lock::Taken);
    CHECK(a->CommitHolding(a->Load(id, T0 + 40), Sets({{"n", "late"}}), T0 + 70, "owner-a2").outcome ==
          CommitResult::Outcome::Fenced);
    CHECK(a->Load(id, T0 + 70)->items.at("n") == "1");
    // A read whose lock was lost is still a read: nothing to refuse.
    CHECK(a->CommitHolding(a->Load(id, T0 + 70), ChangeSet{}, T0 + 70, "owner-a2").outcome ==
          CommitResult::Outcome::Unchanged);
    CHECK(b->TryLock(id, "owner-b2", 30, T0 + 70) == Lock::Taken);  // the expired lock, taken
  });
}

TEST_CASE("lock: instances racing for one lock, exactly one gets it", "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    std::string id = e.open()->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    constexpr int kRacers = 8;
    std::vector<std::unique_ptr<SessionStore>> stores;
    for (int i = 0; i < kRacers; ++i) stores.push_back(e.open());
    std::vector<Lock> got(kRacers, Lock::NoSession);
    std::vector<std::thread> threads;
    for (int i = 0; i < kRacers; ++i)
      threads.emplace_back([&, i] { got[i] = stores[i]->TryLock(id, "owner-" + std::to_string(i), 30, T0); });
    for (auto& t : threads) t.join();
    CHECK(std::count(got.begin(), got.end(), Lock::Taken) == 1);
    CHECK(std::count(got.begin(), got.end(), Lock::Held) == kRacers - 1);
  });
}

TEST_CASE("lock: the collector leaves a lock in its lease alone", "[store][conformance][lock]") {
  ForEachEngine([](Engine& e) {
    auto a = e.open(), b = e.open();
    std::string id = a->Commit(std::nullopt, Sets({{"n", "0"}}), T0).id;
    REQUIRE(a->TryLock(id, "owner-a", 30, T0) == Lock::Taken);
    CHECK(a->CollectGarbage(T0 + 29, 10) == 0);
    CHECK(b->TryLock(id, "owner-b", 30, T0 + 29) == Lock::Held);
    CHECK(a->CommitHolding(a->Load(id, T0 + 29), Sets({{"n", "1"}}), T0 + 29, "owner-a").outcome ==
          CommitResult::Outcome::Updated);
  });
}

// ---- Sites (SESSION_SITE): a session belongs to one site. ----

namespace {

SiteScope Site(std::string name, std::optional<StoreTimeouts> timeouts = std::nullopt) {
  return {std::move(name), timeouts};
}

}  // namespace

TEST_CASE("sites: an id of one site is unknown on another, and a write there makes a new session",
          "[store][conformance][sites]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    const SiteScope shop = Site("shop"), blog = Site("blog"), main_site = Site("");
    std::string cart = store->Commit(std::nullopt, Sets({{"cart", "3 books"}}), T0, shop).id;
    std::string home = store->Commit(std::nullopt, Sets({{"user", "ann"}}), T0, main_site).id;
    REQUIRE(store->Load(cart, T0 + 1, shop));
    REQUIRE(store->Load(home, T0 + 1));  // the default site, as before sites
    // The same cookie value presented on another site: nothing.
    CHECK_FALSE(store->Load(cart, T0 + 1, blog));
    CHECK_FALSE(store->Load(cart, T0 + 1, main_site));
    CHECK_FALSE(store->Load(home, T0 + 1, shop));
    CHECK_FALSE(store->HoldsExpired(cart, T0 + 1, blog));
    // A write there is a new visitor's: a new session of that site, never the other's.
    CommitResult fresh = store->Commit(store->Load(cart, T0 + 2, blog), Sets({{"cart", "stolen"}}), T0 + 2, blog);
    REQUIRE(fresh.outcome == CommitResult::Outcome::Created);
    CHECK(fresh.id != cart);
    CHECK(store->Load(fresh.id, T0 + 3, blog)->items == Items{{"cart", "stolen"}});
    CHECK_FALSE(store->Load(fresh.id, T0 + 3, shop));
    CHECK(store->Load(cart, T0 + 3, shop)->items == Items{{"cart", "3 books"}});
    // Regenerate and abandon stay within the site.
    ChangeSet regenerate;
    regenerate.regenerate = true;
    CommitResult moved = store->Commit(store->Load(cart, T0 + 4, shop), regenerate, T0 + 4, shop);
    REQUIRE(moved.outcome == CommitResult::Outcome::Regenerated);
    CHECK(store->Load(moved.id, T0 + 5, shop)->items == Items{{"cart", "3 books"}});
    CHECK_FALSE(store->Load(moved.id, T0 + 5));
    ChangeSet abandon;
    abandon.abandon = true;
    CHECK(store->Commit(store->Load(moved.id, T0 + 6, shop), abandon, T0 + 6, shop).outcome ==
          CommitResult::Outcome::Abandoned);
    CHECK(store->Load(home, T0 + 7)->items == Items{{"user", "ann"}});
  });
}

TEST_CASE("sites: a site's sessions live by its timeouts, within the store's", "[store][conformance][sites]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();  // idle 600, absolute 3600
    const SiteScope quick = Site("quick", StoreTimeouts{60, 3600}), brief = Site("brief", StoreTimeouts{600, 100}),
                    greedy = Site("greedy", StoreTimeouts{6000, 36000});
    std::string q = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0, quick).id;
    std::string b = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0, brief).id;
    std::string g = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0, greedy).id;
    std::string d = store->Commit(std::nullopt, Sets({{"k", "v"}}), T0).id;
    // Idle: the site's 60 s. A read refreshes the last access after a tenth of it.
    auto loaded = store->Load(q, T0 + 6, quick);
    REQUIRE(loaded);
    CommitResult touched = store->Commit(loaded, ChangeSet{}, T0 + 6, quick);
    CHECK(touched.outcome == CommitResult::Outcome::Updated);
    CHECK(touched.touched);
    CHECK(store->Load(q, T0 + 65, quick));
    CHECK_FALSE(store->Load(q, T0 + 66, quick));
    // The stored expiry is the site's: the collector takes it then, and only it.
    CHECK(store->CollectGarbage(T0 + 66, 100) == 1);
    // Absolute: the site's 100 s, even in use.
    for (std::int64_t now = T0 + 30; now < T0 + 100; now += 30) {
      auto s = store->Load(b, now, brief);
      REQUIRE(s);
      store->Commit(s, ChangeSet{}, now, brief);
    }
    CHECK_FALSE(store->Load(b, T0 + 100, brief));
    // A site's timeout above the store's is cut to it.
    CHECK(store->Load(g, T0 + 599, greedy));
    CHECK_FALSE(store->Load(g, T0 + 600, greedy));
    CHECK(store->Load(d, T0 + 599));
    CHECK_FALSE(store->Load(d, T0 + 600));
  });
}

// The rotation grace and exclusive mode's lock key on the site's digest
// too: neither leads another site's request to a session.
TEST_CASE("sites: a forward and a lock belong to the session's site", "[store][conformance][sites]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    const SiteScope shop = Site("shop");
    std::string old_id = store->Commit(std::nullopt, Sets({{"cart", "1"}}), T0, shop).id;
    ChangeSet login;
    login.regenerate = true;
    std::string new_id = store->Commit(store->Load(old_id, T0, shop), login, T0, shop).id;
    auto s = store->Load(old_id, T0 + 1, shop);
    REQUIRE(s);
    CHECK(s->id == new_id);
    CHECK(s->forwarded);
    CHECK_FALSE(store->Load(old_id, T0 + 1));  // the default site: no forward, no session
    CHECK_FALSE(store->Load(old_id, T0 + 1, Site("blog")));
    // A write through the old id within the grace lands in the shop's session.
    CHECK(store->Commit(s, Sets({{"cart", "2"}}), T0 + 2, shop).outcome == CommitResult::Outcome::Updated);
    CHECK(store->Load(new_id, T0 + 2, shop)->items == Items{{"cart", "2"}});

    auto other = e.open();
    CHECK(store->TryLock(new_id, shop, "a", 30, T0 + 2) == SessionStore::LockOutcome::Taken);
    CHECK(other->TryLock(new_id, shop, "b", 30, T0 + 2) == SessionStore::LockOutcome::Held);
    CHECK(other->TryLock(new_id, "b", 30, T0 + 2) == SessionStore::LockOutcome::NoSession);  // default site
    CHECK(store->CommitHolding(store->Load(new_id, T0 + 3, shop), Sets({{"cart", "3"}}), T0 + 3, shop, "a")
              .outcome == CommitResult::Outcome::Updated);
    CHECK(other->TryLock(new_id, shop, "b", 30, T0 + 3) == SessionStore::LockOutcome::Taken);
    other->Unlock(new_id, shop, "b");
    CHECK(store->Load(new_id, T0 + 3, shop)->items == Items{{"cart", "3"}});
  });
}

TEST_CASE("sites: the operator's commands address one site's sessions", "[store][conformance][sites]") {
  ForEachEngine([](Engine& e) {
    auto store = e.open();
    std::string shop_ann = store->Commit(std::nullopt, Sets({{"user", "ann"}}), T0, Site("shop")).id;
    std::string shop_bob = store->Commit(std::nullopt, Sets({{"user", "bob"}}), T0 + 1, Site("shop")).id;
    std::string home_ann = store->Commit(std::nullopt, Sets({{"user", "ann"}, {"x", "y"}}), T0 + 2).id;
    auto admin = e.factory.admin(e.options());
    ListQuery all;
    all.which = ListQuery::Which::All;
    // The default site until told otherwise.
    std::vector<SessionSummary> home = admin->List(all, T0 + 10);
    REQUIRE(home.size() == 1);
    CHECK(home[0].digest == DigestOf(home_ann));
    CHECK(admin->Stats(T0 + 10).live == 1);
    CHECK(admin->Stats(T0 + 10).items == 2);
    CHECK(FindSession(*admin, shop_ann).kind == SessionRef::Kind::NotFound);
    CHECK(admin->FindByPrefix(HexOf(DigestOf(shop_ann, "shop")), 5).empty());

    admin->SetSite("shop");
    std::vector<SessionSummary> shop = admin->List(all, T0 + 10);
    REQUIRE(shop.size() == 2);
    CHECK(shop[0].digest == DigestOf(shop_bob, "shop"));
    StoreStats st = admin->Stats(T0 + 10);
    CHECK(st.live == 2);
    CHECK(st.items == 2);
    CHECK(st.bytes == 14);
    SessionRef ref = FindSession(*admin, shop_ann);
    REQUIRE(ref.kind == SessionRef::Kind::Found);
    CHECK(ref.digest == DigestOf(shop_ann, "shop"));
    CHECK(FindSession(*admin, home_ann).kind == SessionRef::Kind::NotFound);
    // Logging ann out of the shop leaves her logged in on the default site.
    CHECK(admin->RemoveWhere({{"user", "ann"}}) == 1);
    CHECK_FALSE(store->Load(shop_ann, T0 + 11, Site("shop")));
    CHECK(store->Load(shop_bob, T0 + 11, Site("shop")));
    CHECK(store->Load(home_ann, T0 + 11));
    admin->SetSite("nowhere");
    CHECK(admin->List(all, T0 + 10).empty());
    CHECK(admin->Stats(T0 + 10).live == 0);
  });
}
