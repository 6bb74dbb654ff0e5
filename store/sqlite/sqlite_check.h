// What `sessiond serve --test` checks of the SQLite file, without changing
// it: no file created, no schema migrated, no row written.
#pragma once

#include <string>
#include <vector>

#include "store/open.h"
#include "store/sqlite/sqlite_backend.h"

namespace sessiond {

// Whether `serve` could use the database at options.db: a missing file
// whose directory lets serve create it; or an existing SQLite file this user
// can read and write, in a directory where SQLite can keep its -wal and -shm
// files, of schema version kSchemaVersion or older, whose write lock can be
// taken within the busy timeout. Appends one message per problem to
// `problems`, and what serve would do to a good file (create it, migrate
// it) to `notes`. Never throws.
void CheckSqliteFile(const StoreOptions& options, std::vector<std::string>& problems,
                     std::vector<std::string>& notes);

}  // namespace sessiond
