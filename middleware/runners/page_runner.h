// Runs one page script as a CGI child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "middleware/base/spill_buffer.h"
#include "middleware/runners/runner.h"

namespace sessiond {

struct PageLimits {
  std::chrono::milliseconds timeout{30000};  // whole run, spawn to exit
  std::size_t max_output = 8 * 1024 * 1024;  // bytes of stdout
  std::size_t max_stderr = 4096;             // bytes of stderr kept for the log
  std::size_t output_memory = 64 * 1024;     // stdout kept in memory; past it, a temporary file
  std::string temp_dir = "/tmp";             // where that file is made (O_TMPFILE)
};

// Who pages run as (--user/--group). Unset: sessiond's own user and groups.
struct PageUser {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (the user's, from getgrouplist)
};

// One run of a page.
struct PageSpec {
  std::string path;              // the executable (absolute path)
  std::vector<std::string> env;  // exactly its environment: nothing is inherited
  std::string_view input;        // its stdin, when input_fd < 0
  // Or: stdin is this file, read from offset 0 (a spilled body). The page gets
  // a copy of the descriptor, which shares its file offset: RunPage seeks it
  // to 0 first and the page's reads move it, so the caller must not use that
  // offset (read/write/lseek) while the page runs; pread is fine.
  int input_fd = -1;
  int extra_fd = -1;             // when >= 0: becomes the page's fd 3 (the session file)
  const PageUser* user = nullptr;  // null: run as sessiond runs
};

// A page's outcome (runner.h); never Malformed.
using PageResult = RunResult;

// Runs the page with exactly `spec.env` as its environment, stdin, stdout,
// stderr and (when given) fd 3 as its only descriptors, its directory as
// working directory, in a process group of its own, as `spec.user` when set.
// It dies with sessiond (parent-death signal). When the run ends, however it
// ends, every process left in its process group is killed, so a page leaves
// nothing running behind it. stdin, stdout and stderr are served by one poll
// loop, so a page that writes before reading cannot deadlock. Safe to call
// from many threads at once, but never from the main thread once
// AdoptOrphans() was called (see ReapOrphans).
// The run ends when the page exits (its output is what it wrote until then:
// a background process that keeps stdout open does not hold the run), when
// it overruns `limits.timeout`, or when it writes more than `max_output`.
// Output past `output_memory` goes to an O_TMPFILE file in `temp_dir`.
// Throws std::system_error when that file cannot be created or written (a
// full disk) or poll() fails: the page and its group are killed and reaped
// before the exception leaves. Needs Linux 5.9 (close_range, CLONE_PIDFD).
// The process must ignore SIGPIPE: a page may exit without reading its body.
PageResult RunPage(const PageSpec& spec, const PageLimits& limits);

// Makes sessiond the reaper of its pages' orphans (PR_SET_CHILD_SUBREAPER), so
// a page's child that left its process group (setsid, a double fork) is
// re-parented to sessiond instead of init. Call once at start, on the main
// thread, before any page runs.
void AdoptOrphans();

// Kills and reaps every orphan re-parented to sessiond since the last call:
// processes that a page left behind outside its process group (and the
// remains of group members killed at the end of a run). Call it from any
// thread of sessiond, now and then (one call at a time is enforced); an
// orphan still in the group of a running page is left alone: the end of that
// run kills it. Returns how many processes it reaped.
// Orphans are re-parented to the main thread, and this reads the main
// thread's children (/proc/self/task/<pid>/children), so THE MAIN THREAD
// MUST NEVER RUN PAGES ITSELF: such a page would be taken for an orphan and
// killed. Pages run on worker threads, whose children are never listed.
// It never waits for a process to end: one killed but not ended yet (in
// uninterruptible sleep) is reaped by a later call.
std::size_t ReapOrphans();
// The same, reaping with `try_reap(pid)` (true: reaped; false: not ended
// yet), the seam through which a test plays a process that cannot end yet.
std::size_t ReapOrphans(const std::function<bool(pid_t)>& try_reap);

// The runner for one page, resolved by the handler: RunPage with the cleaned
// variables, the page's own PATH, SCRIPT_FILENAME, SCRIPT_NAME and PATH_INFO
// (those of the web server are dropped, as is PATH_TRANSLATED), and the
// session. A session whose HTTP_SESSION would exceed Linux's 128 KiB limit on
// one environment string reaches the page as a sealed file on fd 3 instead
// (SESSION_FILE=/dev/fd/3).
class PageRunner : public Runner {
 public:
  // `path`: the page, resolved; `path_info`: "" or "/extra/path".
  PageRunner(std::string path, std::string path_info, const PageLimits& limits, const PageUser* user)
      : path_(std::move(path)), path_info_(std::move(path_info)), limits_(limits), user_(user) {}
  std::string Describe() const override { return "page " + path_; }
  RunResult Run(const RunInput& input) const override;

 private:
  std::string path_, path_info_;
  const PageLimits& limits_;
  const PageUser* user_;
};

}  // namespace sessiond
