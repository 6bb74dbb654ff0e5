// What serve --test checks of a SQLite file (the contract: store/open.h).
#include "store/open.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/sqlite/sqlite_backend.h"
#include "store/sqlite/sqlite_db.h"

namespace sessiond {
namespace {

std::string DirectoryOf(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool Writable(const std::string& path) { return ::access(path.c_str(), W_OK) == 0; }

}  // namespace

void CheckSqliteFile(const StoreOptions& options, std::vector<std::string>& problems,
                     std::vector<std::string>& notes) {
  const std::string& path = options.db;
  const std::string dir = DirectoryOf(path);
  const std::string name = "--db " + path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      problems.push_back(name + ": " + std::strerror(errno));
    } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      problems.push_back(name + " does not exist and cannot be created in " + dir + ": " + std::strerror(errno));
    } else {
      notes.push_back(name + " does not exist yet: serve creates it (mode 0600)");
    }
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    problems.push_back(name + " is not a regular file");
    return;
  }
  if (::access(path.c_str(), R_OK | W_OK) != 0) {
    problems.push_back(name + " is not readable and writable by this user: " + std::strerror(errno));
    return;
  }
  // In WAL mode SQLite keeps two files beside the database, and creates them
  // when they are missing.
  if (::access(dir.c_str(), W_OK | X_OK) != 0 && !(Writable(path + "-wal") && Writable(path + "-shm"))) {
    problems.push_back(name + ": SQLite cannot create " + path + "-wal and " + path + "-shm in " + dir + ": " +
                       std::strerror(errno));
    return;
  }
  try {
    Db db(path);  // the file exists: nothing is created
    db.SetBusyTimeout(options.busy_timeout_ms);
    const int known = SqliteSchemaSteps().known();
    SchemaLevel level = ReadSqliteSchemaLevel(db);
    std::int64_t version = level.version;
    try {
      RefuseUnusableSchema(level, known, name + ": ", 1);
    } catch (const StoreError& e) {
      problems.push_back(e.what());
      return;
    }
    if (version > known)
      notes.push_back(name + " has schema version " + std::to_string(version) +
                      ", expanded by a newer sessiond of the farm: this one serves it as it is");
    std::int64_t tables = db.QueryInt("SELECT count(*) FROM sqlite_schema WHERE name IN ('sessions', 'items')");
    if (version == 0 && tables == 0) {
      notes.push_back(name + " has no tables yet: serve creates them (schema version " + std::to_string(known) +
                      ")");
    } else if (version == 0) {
      problems.push_back(name + " has sessions or items tables but no schema version: not sessiond's database?");
      return;
    } else if (version < known) {
      notes.push_back(name + " has schema version " + std::to_string(version) + ": serve migrates it to " +
                      std::to_string(known));
    } else if (tables != 2) {
      problems.push_back(name + " says schema version " + std::to_string(version) +
                         " but lacks the sessions or items table");
      return;
    }
    // The write lock, taken and given back (rolled back: nothing written),
    // proves that serve can commit; another writer holding it past the busy
    // timeout is a busy database, not a bad setting.
    Transaction probe(db);
  } catch (const StoreError& e) {
    if (e.busy())
      notes.push_back(name + " is busy (another writer held it past --busy-timeout): not checked for writing");
    else
      problems.push_back(name + ": " + e.what());
  }
}

}  // namespace sessiond
