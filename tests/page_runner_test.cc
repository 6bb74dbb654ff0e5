#include "middleware/page_runner.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using namespace sessiond;
using O = PageResult::Outcome;

namespace {
// A page script in a fresh directory, removed at the end.
struct Script {
  std::filesystem::path dir, path;
  explicit Script(const std::string& body) {
    char tmpl[] = "/tmp/sessiond-page-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    path = dir / "page";
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  }
  ~Script() { std::filesystem::remove_all(dir); }
  PageResult Run(std::vector<std::string> env = {}, std::string_view input = {}, PageLimits limits = {}) {
    return RunPage(path.string(), env, input, limits);
  }
};
}  // namespace

TEST_CASE("a page gets exactly the given environment, its body, and its own directory", "[page]") {
  Script s("printf '%s|%s|' \"$FOO\" \"${HOME-unset}\"; pwd | tr -d '\\n'; printf '|'; cat");
  PageResult r = s.Run({"FOO=bar", "PATH=/usr/bin:/bin"}, "the body");
  CHECK(r.outcome == O::Exited);
  CHECK(r.exit_code == 0);
  CHECK(r.output == "bar|unset|" + s.dir.string() + "|the body");
}

TEST_CASE("exit status and signals are reported, not thrown", "[page]") {
  CHECK(Script("exit 7").Run().exit_code == 7);
  PageResult r = Script("kill -TERM $$").Run();
  CHECK(r.outcome == O::Signaled);
  CHECK(r.exit_code == SIGTERM);
  PageResult missing = RunPage("/nonexistent/page", {}, {}, {});
  CHECK(missing.outcome == O::SpawnFailed);
  CHECK(missing.exit_code == ENOENT);
}

TEST_CASE("stderr is kept up to its limit", "[page]") {
  PageLimits limits;
  limits.max_stderr = 10;
  PageResult r = Script("echo 0123456789abcdef >&2; echo out").Run({"PATH=/usr/bin:/bin"}, {}, limits);
  CHECK(r.errors == "0123456789");
  CHECK(r.output == "out\n");
}

TEST_CASE("a page that overruns its time is killed with its children", "[page]") {
  PageLimits limits;
  limits.timeout = std::chrono::milliseconds(200);
  Script s("sleep 60 & echo $! > child; wait");
  PageResult r = s.Run({"PATH=/usr/bin:/bin"}, {}, limits);
  CHECK(r.outcome == O::TimedOut);
  pid_t child = 0;
  std::ifstream(s.dir / "child") >> child;
  REQUIRE(child > 0);
  // Killed (a zombie at most, where nothing reaps orphans): /proc says which.
  std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
  std::string pid, comm, state;
  if (stat >> pid >> comm >> state) CHECK(state == "Z");
}

TEST_CASE("output past its limit stops the page", "[page]") {
  PageLimits limits;
  limits.max_output = 1000;
  PageResult r = Script("while :; do echo xxxxxxxxxxxxxxxxxxxx; done").Run({}, {}, limits);
  CHECK(r.outcome == O::OutputTooLarge);
}

TEST_CASE("big input and output at once do not deadlock", "[page]") {
  // The page writes 1 MiB before reading: a runner that wrote all of stdin
  // first would block on a full pipe while the page blocks on its stdout.
  std::string input(1 << 20, 'i');
  PageResult r = Script("head -c 1048576 /dev/zero; wc -c").Run({"PATH=/usr/bin:/bin"}, input);
  REQUIRE(r.outcome == O::Exited);
  CHECK(r.output.size() == (1u << 20) + 8);
  CHECK(r.output.substr(1 << 20) == "1048576\n");
}

TEST_CASE("a page that ignores its body is fine", "[page]") {
  PageResult r = Script("echo done").Run({}, std::string(1 << 20, 'x'));
  CHECK(r.outcome == O::Exited);
  CHECK(r.output == "done\n");
}
