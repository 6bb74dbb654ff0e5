#include "middleware/runners/page_runner.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace sessiond;
using O = PageResult::Outcome;

namespace {

const std::vector<std::string> kPath{"PATH=/usr/bin:/bin"};

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
  PageSpec Spec(std::vector<std::string> env = kPath) const {
    PageSpec spec;
    spec.path = path.string();
    spec.env = std::move(env);
    return spec;
  }
  PageResult Run(std::vector<std::string> env = {}, std::string_view input = {}, PageLimits limits = {}) const {
    PageSpec spec = Spec(std::move(env));
    spec.input = input;
    return RunPage(spec, limits);
  }
  pid_t ReadPid(const std::string& name) const {
    pid_t pid = 0;
    std::ifstream(dir / name) >> pid;
    return pid;
  }
  void Fifo(const std::string& name) const { REQUIRE(mkfifo((dir / name).c_str(), 0600) == 0); }
};

// Whether `pid` is a live (not zombie) process running one of `comms` (a
// page's fork is named after the script until it execs): a pid
// that was reused by another program counts as gone.
bool Running(pid_t pid, std::initializer_list<std::string_view> comms = {"page", "sh", "sleep"}) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string id, name, state;
  if (!(stat >> id >> name >> state) || state == "Z") return false;
  for (std::string_view comm : comms)
    if (name == "(" + std::string(comm) + ")") return true;
  return false;
}

// Whether `pid` (a process a page started) exits: at once when it is gone
// already, else when its pidfd says so. SIGKILL is delivered asynchronously,
// so a killed process may still be on its way out; the bound only keeps a
// failure finite.
bool Exits(pid_t pid) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  bool exited = !Running(pid);  // a zombie, or the pid is another program's now
  if (!exited) {
    pollfd p{pidfd, POLLIN, 0};
    exited = ::poll(&p, 1, 60000) == 1;
  }
  ::close(pidfd);
  return exited;
}

// Whether ReapOrphans kills and reaps `pid`, an orphan: the first call kills
// it and reaps it if it ended at once; else, once it has ended, the next.
bool ReapedByReapOrphans(pid_t pid) {
  ReapOrphans();
  if (::kill(pid, 0) != 0) return true;
  if (!Exits(pid)) return false;
  ReapOrphans();
  return ::kill(pid, 0) != 0;
}

// The parent of `pid`, from /proc (0 when gone).
pid_t ParentOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string id, name, state;
  pid_t ppid = 0;
  stat >> id >> name >> state >> ppid;
  return ppid;
}

// Kills a process a test started, if a failed check left it running.
struct KillAtEnd {
  pid_t pid = 0;
  ~KillAtEnd() {
    if (pid > 0 && Running(pid)) ::kill(pid, SIGKILL);
  }
};

// The descriptors of `ls -l /proc/self/fd/`, without the one ls opened to
// list them (it points at a /proc/<pid>/fd directory).
std::set<int> ListedFds(const std::string& ls) {
  std::set<int> fds;
  std::istringstream lines(ls);
  std::string line;
  while (std::getline(lines, line)) {
    std::size_t arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    std::string target = line.substr(arrow + 4);
    if (target.rfind("/proc/", 0) == 0 && target.size() > 3 && target.substr(target.size() - 3) == "/fd")
      continue;
    std::size_t space = line.rfind(' ', arrow - 1);
    fds.insert(std::stoi(line.substr(space + 1, arrow - space - 1)));
  }
  return fds;
}

// Reads one line the page writes into the fifo `name`; bounded only so that
// a broken page fails the test instead of hanging it.
std::string ReadFifo(const Script& s, const std::string& name) {
  int fd = ::open((s.dir / name).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::string line;
  pollfd p{fd, POLLIN, 0};
  while (line.find('\n') == std::string::npos && ::poll(&p, 1, 60000) == 1) {
    char c[64];
    ssize_t r = ::read(fd, c, sizeof c);
    if (r <= 0) break;
    line.append(c, static_cast<std::size_t>(r));
  }
  ::close(fd);
  return line;
}

// Writes a line into the fifo `name` without blocking (O_RDWR never waits
// for a reader) and returns the descriptor: it must stay open until the page
// has read the line, since a fifo drops its data when its last end closes.
int WriteFifo(const Script& s, const std::string& name) {
  int fd = ::open((s.dir / name).c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(::write(fd, "go\n", 3) == 3);
  return fd;
}

std::string WriteTemp(const Script& s, const std::string& name, const std::string& text) {
  std::string path = (s.dir / name).string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("a page gets exactly the given environment, its body, and its own directory", "[page]") {
  Script s("printf '%s|%s|' \"$FOO\" \"${HOME-unset}\"; pwd | tr -d '\\n'; printf '|'; cat");
  PageResult r = s.Run({"FOO=bar", "PATH=/usr/bin:/bin"}, "the body");
  CHECK(r.outcome == O::Exited);
  CHECK(r.exit_code == 0);
  CHECK(r.output.str() == "bar|unset|" + s.dir.string() + "|the body");
}

TEST_CASE("exit status and signals are reported, not thrown", "[page]") {
  CHECK(Script("exit 7").Run().exit_code == 7);
  PageResult r = Script("kill -TERM $$").Run();
  CHECK(r.outcome == O::Signaled);
  CHECK(r.exit_code == SIGTERM);
  PageSpec missing_spec;
  missing_spec.path = "/nonexistent/page";
  PageResult missing = RunPage(missing_spec, {});
  CHECK(missing.outcome == O::SpawnFailed);
  CHECK(missing.exit_code == ENOENT);
}

// Run by ctest in a process of its own, so this is the process's first page:
// what it opens once (/dev/null) is opened here, with no descriptor free.
TEST_CASE("a page started while descriptors ran out fails alone, the next one runs", "[page]") {
  Script s("echo ran");
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit low = old;
  low.rlim_cur = 64;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<int> taken;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) taken.push_back(fd);
  PageResult starved = s.Run();
  for (int fd : taken) ::close(fd);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
  CHECK(starved.outcome == O::SpawnFailed);
  CHECK(starved.exit_code == EMFILE);
  for (int i = 0; i < 2; ++i) {
    PageResult r = s.Run();
    CHECK(r.outcome == O::Exited);
    CHECK(r.output.str() == "ran\n");
  }
}

TEST_CASE("stderr is kept up to its limit", "[page]") {
  PageLimits limits;
  limits.max_stderr = 10;
  PageResult r = Script("echo 0123456789abcdef >&2; echo out").Run(kPath, {}, limits);
  CHECK(r.errors == "0123456789");
  CHECK(r.output.str() == "out\n");
}

TEST_CASE("a page that overruns its time is killed", "[page]") {
  // However fast or slow the machine, `sleep 60` cannot end within 100 ms.
  PageLimits limits;
  limits.timeout = std::chrono::milliseconds(100);
  PageResult r = Script("exec sleep 60").Run(kPath, {}, limits);
  CHECK(r.outcome == O::TimedOut);
}

TEST_CASE("output past its limit stops the page and kills its process group", "[page]") {
  // The child's pid is in the file before the first byte of output, so
  // before the limit can be reached.
  PageLimits limits;
  limits.max_output = 1000;
  Script s("sleep 300 & echo $! > child; while :; do echo xxxxxxxxxxxxxxxxxxxx; done");
  PageResult r = s.Run(kPath, {}, limits);
  CHECK(r.outcome == O::OutputTooLarge);
  pid_t child = s.ReadPid("child");
  REQUIRE(child > 0);
  KillAtEnd cleanup{child};
  // Killed: a zombie at most, where nothing reaps orphans.
  CHECK(Exits(child));
}

TEST_CASE("a page that exits leaves no process of its group running", "[page]") {
  // The background sleep keeps the page's stdout open: the run still ends
  // when the page exits, and the sleep is killed.
  Script s("sleep 300 & echo $! > child; echo done");
  PageResult r = s.Run(kPath);
  CHECK(r.outcome == O::Exited);
  CHECK(r.exit_code == 0);
  CHECK(r.output.str() == "done\n");
  pid_t child = s.ReadPid("child");
  REQUIRE(child > 0);
  KillAtEnd cleanup{child};
  CHECK(Exits(child));
}

TEST_CASE("a page gets only stdin, stdout and stderr of sessiond's descriptors", "[page]") {
  Script s("exec ls -l /proc/self/fd/");
  // Descriptors another thread opened without O_CLOEXEC: a file and a
  // socket pair, as another request's connection would be.
  std::string marker = WriteTemp(s, "leak-marker", "secret");
  int leaked[3] = {::open(marker.c_str(), O_RDONLY), ::open(marker.c_str(), O_RDWR), -1};
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  leaked[2] = pair[0];
  REQUIRE(leaked[0] >= 0);
  REQUIRE(leaked[1] >= 0);
  PageResult r = s.Run(kPath);
  for (int fd : leaked) ::close(fd);
  ::close(pair[1]);
  REQUIRE(r.outcome == O::Exited);
  CHECK(r.output.str().find("leak-marker") == std::string::npos);
  CHECK(ListedFds(r.output.str()) == std::set<int>{0, 1, 2});
}

TEST_CASE("the extra descriptor becomes the page's fd 3", "[page]") {
  Script s("cat <&3; echo; exec ls -l /proc/self/fd/");
  int fd = ::open(WriteTemp(s, "session", "session-data").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  PageSpec spec = s.Spec();
  spec.extra_fd = fd;
  PageResult r = RunPage(spec, {});
  ::close(fd);
  REQUIRE(r.outcome == O::Exited);
  std::string out = r.output.str();
  CHECK(out.substr(0, out.find('\n')) == "session-data");
  CHECK(ListedFds(out) == std::set<int>{0, 1, 2, 3});
}

TEST_CASE("descriptors with small numbers each land where they belong", "[page]") {
  // The stdin file at fd 3 and the extra one at fd 0: placing either first,
  // naively, would overwrite the other.
  Script s("cat; printf '|'; cat <&3");
  struct Saved {
    int saved0 = ::fcntl(0, F_DUPFD_CLOEXEC, 10), saved3 = ::fcntl(3, F_DUPFD_CLOEXEC, 10);
    ~Saved() {
      for (auto [fd, saved] : {std::pair{0, saved0}, std::pair{3, saved3}}) {
        if (saved >= 0) {
          ::dup3(saved, fd, O_CLOEXEC);
          ::close(saved);
        } else {
          ::close(fd);
        }
      }
    }
  } saved;
  auto place = [](const std::string& path, int target) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    if (fd != target) {
      REQUIRE(::dup3(fd, target, O_CLOEXEC) == target);
      ::close(fd);
    }
  };
  place(WriteTemp(s, "input", "the input"), 3);
  place(WriteTemp(s, "extra", "the extra"), 0);
  PageSpec spec = s.Spec();
  spec.input_fd = 3;
  spec.extra_fd = 0;
  PageResult r = RunPage(spec, {});
  REQUIRE(r.outcome == O::Exited);
  CHECK(r.output.str() == "the input|the extra");
}

TEST_CASE("stdin can be a file, read from its start", "[page]") {
  Script s("cat");
  int fd = ::open(WriteTemp(s, "body", "a spilled body\n").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::lseek(fd, 0, SEEK_END) > 0);  // as a writer leaves it
  PageSpec spec = s.Spec();
  spec.input_fd = fd;
  spec.input = "not this";
  PageResult r = RunPage(spec, {});
  ::close(fd);
  CHECK(r.outcome == O::Exited);
  CHECK(r.output.str() == "a spilled body\n");
}

TEST_CASE("output past output_memory goes to a temporary file, intact", "[page]") {
  PageLimits limits;
  limits.output_memory = 64 * 1024;
  PageResult r = Script("seq 1 200000").Run(kPath, {}, limits);
  REQUIRE(r.outcome == O::Exited);
  std::string expected;
  for (int i = 1; i <= 200000; ++i) expected += std::to_string(i) + '\n';
  REQUIRE(expected.size() > (1u << 20));
  CHECK(r.output.spilled());
  CHECK(r.output.size() == expected.size());
  CHECK(r.output.head() == std::string_view(expected).substr(0, limits.output_memory));
  CHECK(r.output.str() == expected);
}

TEST_CASE("big input and output at once do not deadlock", "[page]") {
  // The page writes 1 MiB before reading: a runner that wrote all of stdin
  // first would block on a full pipe while the page blocks on its stdout.
  std::string input(1 << 20, 'i');
  PageResult r = Script("head -c 1048576 /dev/zero; wc -c").Run(kPath, input);
  REQUIRE(r.outcome == O::Exited);
  CHECK(r.output.size() == (1u << 20) + 8);
  CHECK(r.output.str().substr(1 << 20) == "1048576\n");
}

TEST_CASE("a page that ignores its body is fine", "[page]") {
  PageResult r = Script("echo done").Run({}, std::string(1 << 20, 'x'));
  CHECK(r.outcome == O::Exited);
  CHECK(r.output.str() == "done\n");
}

TEST_CASE("a page runs as the given user and groups", "[page]") {
  const passwd* nobody = ::getpwnam("nobody");
  const group* nogroup = ::getgrnam("nogroup");
  REQUIRE(nobody);
  REQUIRE(nogroup);
  PageUser user;
  user.set = true;
  user.uid = nobody->pw_uid;
  user.gid = nogroup->gr_gid;
  user.groups = {nogroup->gr_gid, 100};
  Script s("id -u; id -G");
  // The page's user must be able to enter its directory and run it.
  std::filesystem::permissions(s.dir, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                          std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                                          std::filesystem::perms::others_exec);
  std::filesystem::permissions(s.path, std::filesystem::perms::others_read | std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  PageSpec spec = s.Spec();
  spec.user = &user;
  PageResult r = RunPage(spec, {});
  if (::geteuid() == 0) {
    REQUIRE(r.outcome == O::Exited);
    CHECK(r.exit_code == 0);
    CHECK(r.output.str() == std::to_string(user.uid) + '\n' + std::to_string(user.gid) + " 100\n");
    // sessiond itself keeps its credentials (no set*id broadcast to its threads).
    CHECK(::geteuid() == 0);
    CHECK(::getegid() == 0);
  } else {
    CHECK(r.outcome == O::SpawnFailed);
    CHECK(r.exit_code == EPERM);
  }
}

TEST_CASE("a page dies with the process that started it", "[page]") {
  // A process that runs a page is killed with SIGKILL: the page, which would
  // otherwise sleep 300 s, gets its parent-death signal.
  Script s("echo $$ > started; exec sleep 300");
  s.Fifo("started");
  pid_t runner = ::fork();
  REQUIRE(runner >= 0);
  if (runner == 0) {
    try {
      RunPage(s.Spec(), {});
    } catch (...) {
    }
    ::_exit(0);
  }
  pid_t page = static_cast<pid_t>(std::atoi(ReadFifo(s, "started").c_str()));
  REQUIRE(page > 0);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, page, 0));
  REQUIRE(pidfd >= 0);
  ::kill(runner, SIGKILL);
  ::waitpid(runner, nullptr, 0);
  // Readable when the page has exited; the bound only keeps a failure finite.
  pollfd p{pidfd, POLLIN, 0};
  int ready = ::poll(&p, 1, 60000);
  CHECK(ready == 1);
  if (ready != 1) ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  ::waitpid(page, nullptr, WNOHANG);  // ours only if this process is a subreaper
  ::close(pidfd);
}

namespace {

// A page whose orphan starts a session of its own (out of the page's group),
// says so through the fifo, and outlives the page.
const char* kLeavesOrphan =
    "setsid sh -c 'echo $$ > started; exec sleep 300' </dev/null >/dev/null 2>&1 &\n"
    "read pid < started; echo $pid > orphan";

// Runs `s` (kLeavesOrphan) as a page, not on the main thread, where the
// orphan lands: the orphan's pid.
pid_t LeaveOrphan(Script& s) {
  AdoptOrphans();
  s.Fifo("started");
  PageResult r;
  std::thread worker([&] { r = s.Run(kPath); });
  worker.join();
  REQUIRE(r.outcome == O::Exited);
  pid_t orphan = s.ReadPid("orphan");
  REQUIRE(orphan > 0);
  return orphan;
}

}  // namespace

TEST_CASE("a page's orphan outside its group is killed by ReapOrphans", "[page]") {
  Script s(kLeavesOrphan);
  pid_t orphan = LeaveOrphan(s);
  KillAtEnd cleanup{orphan};
  // Re-parented before the page could be reaped, so before RunPage returned.
  CHECK(Running(orphan));
  CHECK(ParentOf(orphan) == ::getpid());
  CHECK(ReapedByReapOrphans(orphan));  // killed and reaped here: not even a zombie left
}

TEST_CASE("ReapOrphans never waits for an orphan that has not ended yet", "[page]") {
  Script s(kLeavesOrphan);
  pid_t orphan = LeaveOrphan(s);
  KillAtEnd cleanup{orphan};
  // An orphan that cannot be reaped yet (a process in uninterruptible sleep
  // outlives its SIGKILL until its I/O returns): asked once, not waited for.
  std::size_t asked = 0;
  CHECK(ReapOrphans([&](pid_t pid) {
          asked += pid == orphan;
          return false;
        }) == 0);
  CHECK(asked == 1);
  CHECK(Exits(orphan));            // it was killed, and has ended since
  CHECK(::kill(orphan, 0) == 0);   // but is still this process's child to reap
  CHECK(ReapOrphans() >= 1);       // which the next call does
  CHECK(::kill(orphan, 0) != 0);
}

TEST_CASE("ReapOrphans leaves a running page and its group alone", "[page]") {
  AdoptOrphans();
  // A double fork: the sleep is re-parented to this process at once, but
  // stays in the group of the page, which is still running.
  Script s("(sleep 300 </dev/null >/dev/null 2>&1 & echo $! > grandchild)\n"
           "echo ready > ready; read line < release; echo done");
  s.Fifo("ready");
  s.Fifo("release");
  PageLimits limits;
  limits.timeout = std::chrono::seconds(60);  // only so that a failure ends
  PageResult r;
  std::thread worker([&] { r = s.Run(kPath, {}, limits); });
  std::string ready = ReadFifo(s, "ready");
  pid_t grandchild = s.ReadPid("grandchild");
  KillAtEnd cleanup{grandchild};
  CHECK(ready == "ready\n");
  CHECK(ParentOf(grandchild) == ::getpid());
  CHECK(ReapOrphans() == 0);
  CHECK(Running(grandchild));
  int release = WriteFifo(s, "release");
  worker.join();
  ::close(release);
  CHECK(r.outcome == O::Exited);
  CHECK(r.output.str() == "done\n");
  // The end of the run killed it; ReapOrphans now reaps what is left.
  CHECK(Exits(grandchild));
  CHECK(ReapedByReapOrphans(grandchild));
}
