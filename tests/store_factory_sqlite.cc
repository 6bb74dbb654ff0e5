// The SQLite store for the conformance suite: a file in a directory of its
// own, deleted (with its -wal and -shm) before every test.
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

#include "tests/store_factories.h"

namespace sessiond::testing {

namespace {

struct SqliteTestFile {
  std::string dir, path;
  SqliteTestFile() {
    char d[] = "/tmp/sessiond-conformance.XXXXXX";
    if (!::mkdtemp(d)) throw std::runtime_error("mkdtemp failed");
    dir = d;
    path = dir + "/sessions.db";
  }
  ~SqliteTestFile() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

SqliteTestFile& File() {
  static SqliteTestFile file;
  return file;
}

StoreOptions On(StoreOptions o) {
  o.db = File().path;
  return o;
}

const RegisterStore kSqlite{StoreFactory{
    "sqlite",
    [](const StoreOptions& o) { return OpenStore(On(o)); },
    [](const StoreOptions& o) { return OpenAdmin(On(o), false); },
    [] {
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(File().path + suffix);
    },
}};

}  // namespace
}  // namespace sessiond::testing
