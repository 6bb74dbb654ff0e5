// Runs one page script as a CGI child process.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

struct PageLimits {
  std::chrono::milliseconds timeout{30000};  // whole run, spawn to exit
  std::size_t max_output = 8 * 1024 * 1024;  // bytes of stdout
  std::size_t max_stderr = 4096;             // bytes of stderr kept for the log
};

// A failing page is an expected event: its outcome, never an exception.
struct PageResult {
  enum class Outcome {
    Exited,          // ran to the end; `exit_code` says how it went
    Signaled,        // killed by signal `exit_code`
    TimedOut,        // overran the time limit; its process group was killed
    OutputTooLarge,  // wrote more than max_output; its process group was killed
    SpawnFailed,     // could not be started; `exit_code` is the errno
  };
  Outcome outcome = Outcome::SpawnFailed;
  int exit_code = 0;
  std::string output;  // stdout
  std::string errors;  // stderr, up to max_stderr bytes
};

// Runs the executable `path` with exactly `env` as its environment (nothing is
// inherited), `input` on stdin and its directory as working directory, in a
// process group of its own. stdin, stdout and stderr are served by one poll
// loop, so a page that writes before reading cannot deadlock. Safe to call
// from many threads at once (a vfork-style clone, every descriptor close-on-exec).
// The process must ignore SIGPIPE: a page may exit without reading its body.
PageResult RunPage(const std::string& path, const std::vector<std::string>& env,
                   std::string_view input, const PageLimits& limits);

}  // namespace sessiond
