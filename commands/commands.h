// The operator's commands over a session store, beside `sessiond serve`:
//
//   sessiond list | show | rm | logout | gc | stats | check | backup  --db FILE|URI ...
//
// Each one opens the store through the SessionAdmin interface (store/admin.h),
// does one thing, and exits. They depend on store/ only, never on the request
// path, and are safe while the server runs on the same file.
//
// Exit status, for scripts: 0 done; 1 not found, check failed, or the store
// failed (the reason on stderr); 2 usage (bad options, a malformed or
// ambiguous session name, no database given).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>

namespace CLI {
class App;
}

namespace sessiond {

class AdminCommands {
 public:
  // Adds the commands to `app`. Each takes --db; without it, the db of `serve`
  // (from the --config file, the same file the server reads) is used, as is
  // its busy-timeout. `app` must outlive this object.
  explicit AdminCommands(CLI::App& app);
  ~AdminCommands();
  AdminCommands(const AdminCommands&) = delete;
  AdminCommands& operator=(const AdminCommands&) = delete;

  // After app.parse(): whether the command line chose one of these commands.
  bool chosen() const;

  // Runs the chosen command at time `now` (unix seconds); data goes to `out`,
  // messages to `err`. Returns the exit status.
  int Run(std::ostream& out, std::ostream& err, std::int64_t now);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond
