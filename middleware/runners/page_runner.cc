#include "middleware/runners/page_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

namespace sessiond {
namespace {

[[noreturn]] void ThrowErrno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
};

int MakePipe(Pipe& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
  p.read = Fd(fds[0]);
  p.write = Fd(fds[1]);
  return 0;
}

int Reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// The running page: its process group killed, then the page reaped, unless
// Finish() did it already, so no exit path (an exception included) leaves
// a zombie, a runaway page or anything it started in its group.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) Finish();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The group's id is the page's pid, which the kernel cannot hand out again
  // before the page is reaped: killing the group is safe until Finish().
  // The page itself is signalled too, in case it moved to another group.
  void Kill() {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
  }
  // Kills what is left of the group, then reaps the page: in that order, so
  // the group id cannot belong to someone else by the time it is killed.
  int Finish() {
    Kill();
    int status = Reap(pid_);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// The raw system calls for the credential change: glibc's setgroups/setresgid/
// setresuid would broadcast the change to every thread of sessiond (they
// signal all threads of the calling process, whose thread list the child
// shares through CLONE_VM), which must keep its own credentials.
#ifdef SYS_setresuid32  // 32-bit ABIs, where the plain calls take 16-bit ids
constexpr long kSetgroups = SYS_setgroups32, kSetresgid = SYS_setresgid32,
               kSetresuid = SYS_setresuid32;
#else
constexpr long kSetgroups = SYS_setgroups, kSetresgid = SYS_setresgid, kSetresuid = SYS_setresuid;
#endif

// What the child needs, prepared by the parent: the child may not allocate.
struct SpawnArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* dir;
  int fds[4];             // become the page's fds 0, 1, 2 and (when >= 0) 3
  const PageUser* user;   // null or unset: keep sessiond's credentials
  pid_t parent;           // sessiond's pid, to detect that it died meanwhile
  int error;              // the child's errno when it could not exec
};

// Signals whose disposition sessiond changed (ignored, or handled by libfcgi),
// read once: the child sets them back to default. exec() would reset the
// handled ones itself, but not the ignored ones (SIGPIPE), and a handler must
// not run in the child before exec, where it would share the server's memory.
const std::vector<int>& ChangedSignals() {
  static const std::vector<int> changed = [] {
    std::vector<int> v;
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction sa {};
      if (sig != SIGKILL && sig != SIGSTOP && ::sigaction(sig, nullptr, &sa) == 0 &&
          sa.sa_handler != SIG_DFL)
        v.push_back(sig);
    }
    return v;
  }();
  return changed;
}

// Everything the child does before execve; returns 0 or an errno.
int PrepareChild(const SpawnArgs& a) {
  // A process group of its own, so the end of the run kills whatever the
  // page started.
  if (::setpgid(0, 0) != 0) return errno;

  // Exactly fds 0..n-1, nothing else: a descriptor some other thread opened
  // without O_CLOEXEC (another request's socket) must not reach the page.
  // Sources below n are first moved out of the way, so that placing one
  // cannot overwrite another (an input file that happens to be fd 3, a
  // session file at fd 0); every source then differs from its target, so
  // dup2 clears close-on-exec on each.
  const int n = a.fds[3] >= 0 ? 4 : 3;
  int src[4];
  for (int i = 0; i < n; ++i) {
    src[i] = a.fds[i];
    if (src[i] < n && (src[i] = ::fcntl(src[i], F_DUPFD_CLOEXEC, n)) < 0) return errno;
  }
  for (int i = 0; i < n; ++i)
    if (::dup2(src[i], i) < 0) return errno;
  // Also closes the moved copies. Fails only on kernels before 5.9: then the
  // page does not run, rather than run with sessiond's descriptors.
  if (::close_range(static_cast<unsigned>(n), ~0U, 0) != 0) return errno;

  if (a.user && a.user->set) {
    // Groups first: after setresuid the process may no longer change them.
    if (::syscall(kSetgroups, a.user->groups.size(), a.user->groups.data()) != 0 ||
        ::syscall(kSetresgid, a.user->gid, a.user->gid, a.user->gid) != 0 ||
        ::syscall(kSetresuid, a.user->uid, a.user->uid, a.user->uid) != 0)
      return errno;
  }
  // After the credential change, which clears the parent-death signal. Then
  // sessiond may have died before it was set: the page would outlive it.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return errno;
  if (::getppid() != a.parent) return ESRCH;
  // As the page's user: its directory must be open to it.
  if (::chdir(a.dir) != 0) return errno;
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return errno;
  return 0;
}

// Runs in the child, on its own stack, sharing the server's memory until
// execve: only async-signal-safe system calls, no allocation. It returns
// instead of calling _exit: clone() then ends just this process, and no
// noreturn call makes ASan try to unwind a stack it does not know.
int ChildMain(void* p) {
  auto* a = static_cast<SpawnArgs*>(p);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : ChangedSignals()) ::sigaction(sig, &dfl, nullptr);
  a->error = PrepareChild(*a);
  if (a->error == 0) {
    ::execve(a->path, a->argv, a->envp);
    a->error = errno;
  }
  return 127;
}

// Starts the page like posix_spawn, without its per-call cost: glibc maps a
// fresh stack for every child and unmaps it after (with a TLB shootdown on
// every core running one of our threads) and resets all 64 signals one by
// one. Here each worker thread keeps one child stack, and the child resets
// only the signals sessiond changed. CLONE_VM | CLONE_VFORK: no copy of the
// address space; this thread waits until the child has exec'd or exited.
// CLONE_PIDFD: a descriptor (close-on-exec) that polls readable when the page
// has exited, without a system call of its own.
// Returns the pid, or -errno.
pid_t Spawn(SpawnArgs& a, Fd& exited) {
  constexpr std::size_t kStackSize = 64 * 1024;
  thread_local std::unique_ptr<char[]> stack(new char[kStackSize]);
  (void)ChangedSignals();  // computed before any child runs
  sigset_t all, old;
  sigfillset(&all);
  // Blocked across the clone, so no handler runs in the child before it
  // resets the dispositions; restored at once in this thread.
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  a.error = 0;
  int pidfd = -1;
  pid_t pid = ::clone(ChildMain, stack.get() + kStackSize,
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, &pidfd);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return -clone_errno;
  exited = Fd(pidfd);
  if (a.error) {  // the child exited without exec, starting nothing: reap it
    Reap(pid);
    exited.Close();
    return -a.error;
  }
  return pid;
}

std::string DirectoryOf(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// /dev/null open for reading, opened once it can be: an open that failed (no
// descriptor free at that moment) fails that one page, not every later one.
int DevNull() {
  static std::atomic<int> fd{-1};
  int have = fd.load();
  if (have >= 0) return have;
  int opened = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (opened < 0) return -1;
  if (!fd.compare_exchange_strong(have, opened)) {
    ::close(opened);  // another thread's is kept
    return have;
  }
  return opened;
}

}  // namespace

PageResult RunPage(const PageSpec& spec, const PageLimits& limits) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + limits.timeout;
  PageResult result;
  result.output = SpillBuffer(limits.output_memory, limits.temp_dir);

  // A page without a body reads /dev/null: one pipe fewer per request. A
  // body in a file is the page's stdin itself: no pipe, no copy.
  const bool pipe_input = spec.input_fd < 0 && !spec.input.empty();
  const int dev_null = pipe_input || spec.input_fd >= 0 ? -1 : DevNull();
  if (!pipe_input && spec.input_fd < 0 && dev_null < 0) {
    result.exit_code = errno;
    return result;
  }
  Pipe in, out, err;
  for (Pipe* p : {&in, &out, &err}) {
    if (p == &in && !pipe_input) continue;
    if (int e = MakePipe(*p)) {
      result.exit_code = e;
      return result;
    }
  }
  int stdin_fd = pipe_input ? in.read.get() : dev_null;
  if (spec.input_fd >= 0) {
    // The page shares this descriptor's offset (a copy of a descriptor is
    // the same open file), so it starts at 0 and moves as the page reads.
    if (::lseek(spec.input_fd, 0, SEEK_SET) < 0) {
      result.exit_code = errno;
      return result;
    }
    stdin_fd = spec.input_fd;
  }

  std::vector<char*> argv{const_cast<char*>(spec.path.c_str()), nullptr};
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::string dir = DirectoryOf(spec.path);
  SpawnArgs args{spec.path.c_str(), argv.data(), envp.data(), dir.c_str(),
                 {stdin_fd, out.write.get(), err.write.get(), spec.extra_fd},
                 spec.user, ::getpid(), 0};
  Fd exited_fd;
  pid_t pid = Spawn(args, exited_fd);
  if (pid < 0) {
    result.exit_code = -pid;
    return result;
  }
  Child child(pid);
  in.read.Close();
  out.write.Close();
  err.write.Close();
  // The descriptors stay blocking: poll() says when each is ready, a read then
  // returns what is there, and a write of at most PIPE_BUF fits the room that
  // POLLOUT promises. (O_NONBLOCK would cost two fcntl calls per descriptor.)

  // The run ends when the page has exited: its process group is killed at
  // once (a background child may hold stdout open for ever), what the page
  // wrote is still in the pipes and is read without waiting, and whatever
  // arrives later is not the page's.
  bool exited = false;
  std::size_t written = 0;
  char buf[65536];
  while (out.read.open() || err.read.open() || !exited) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      if (exited) break;  // a process outside the group still writes: not the page
      child.Finish();
      result.outcome = PageResult::Outcome::TimedOut;
      return result;
    }
    pollfd fds[4] = {{in.write.get(), POLLOUT, 0},
                     {out.read.get(), POLLIN, 0},
                     {err.read.get(), POLLIN, 0},
                     {exited ? -1 : exited_fd.get(), POLLIN, 0}};
    int n = ::poll(fds, 4, exited ? 0 : static_cast<int>(std::min<long long>(left.count(), INT_MAX)));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("poll");  // the page is killed and reaped on the way out
    }
    if (n == 0) {
      if (exited) break;  // the pipes hold nothing more
      continue;
    }
    if (fds[0].revents) {
      ssize_t w = ::write(in.write.get(), spec.input.data() + written,
                          std::min<std::size_t>(PIPE_BUF, spec.input.size() - written));
      if (w > 0) written += static_cast<std::size_t>(w);
      // A page may exit without reading its body (EPIPE): that is its right.
      if (written == spec.input.size() || (w < 0 && errno != EINTR)) in.write.Close();
    }
    if (fds[1].revents) {
      ssize_t r = ::read(out.read.get(), buf, sizeof buf);
      if (r > 0) {
        if (result.output.size() + static_cast<std::size_t>(r) > limits.max_output) {
          child.Finish();
          result.outcome = PageResult::Outcome::OutputTooLarge;
          return result;
        }
        // Throws when the temporary file cannot grow (a full disk): the page
        // is killed and reaped on the way out, and the caller gets the error.
        result.output.Append(std::string_view(buf, static_cast<std::size_t>(r)));
      } else if (r == 0 || errno != EINTR) {
        out.read.Close();
      }
    }
    if (fds[2].revents) {
      ssize_t r = ::read(err.read.get(), buf, sizeof buf);
      if (r > 0) {
        std::size_t room = limits.max_stderr - std::min(limits.max_stderr, result.errors.size());
        result.errors.append(buf, std::min(room, static_cast<std::size_t>(r)));
      } else if (r == 0 || errno != EINTR) {
        err.read.Close();
      }
    }
    if (fds[3].revents) {
      exited = true;
      child.Kill();  // the page is a zombie: its pid, and so its group id, are still its own
      in.write.Close();
    }
  }
  int status = child.Finish();
  if (WIFSIGNALED(status)) {
    result.outcome = PageResult::Outcome::Signaled;
    result.exit_code = WTERMSIG(status);
  } else {
    result.outcome = PageResult::Outcome::Exited;
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

void AdoptOrphans() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) ThrowErrno("PR_SET_CHILD_SUBREAPER");
}

namespace {

// The whole of a small /proc file, or "" when it cannot be read.
std::string ReadProcFile(const std::string& path) {
  std::string text;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.open()) return text;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    text.append(buf, static_cast<std::size_t>(r));
  }
  return text;
}

std::vector<pid_t> ParsePids(const std::string& text) {
  std::vector<pid_t> pids;
  const char* p = text.c_str();
  for (;;) {
    char* end = nullptr;
    long v = std::strtol(p, &end, 10);
    if (end == p) break;
    if (v > 0) pids.push_back(static_cast<pid_t>(v));
    p = end;
  }
  return pids;
}

// The parent of `pid` from /proc/<pid>/stat ("pid (comm) state ppid ..."),
// or 0 when it is gone.
pid_t ParentOf(pid_t pid) {
  std::string stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 4 >= stat.size()) return 0;
  return static_cast<pid_t>(std::strtol(stat.c_str() + paren + 4, nullptr, 10));
}

}  // namespace

std::size_t ReapOrphans() {
  // Reaps `pid` when it has ended; false when it has not yet. Never waits:
  // a process in uninterruptible sleep (D state: a hung NFS mount) dies only
  // when its I/O returns, and the event loop, which calls this, must not
  // wait for that.
  return ReapOrphans([](pid_t pid) {
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    return r == pid || (r < 0 && errno == ECHILD);
  });
}

std::size_t ReapOrphans(const std::function<bool(pid_t)>& try_reap) {
  // One caller at a time: each pid is reaped once, by the caller that listed it.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  const pid_t self = ::getpid();
  // Orphans land on the main thread (the subreaper's first live thread);
  // pages are children of the worker threads that started them, so they
  // never appear in this list.
  const std::string children = "/proc/self/task/" + std::to_string(self) + "/children";
  std::size_t reaped = 0;
  // Killing an orphan re-parents its own children here: a few more passes
  // take them too; what is left (and what has not died yet) comes with the
  // next call.
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<pid_t> orphans = ParsePids(ReadProcFile(children));
    std::size_t before = reaped;
    for (pid_t pid : orphans) {
      // A listed pid is this process's unreaped child, reaped only here:
      // it cannot have been reused, so signalling and waiting for it is safe.
      pid_t group = ::getpgid(pid);
      if (group > 0 && group != pid && ParentOf(group) == self &&
          std::find(orphans.begin(), orphans.end(), group) == orphans.end())
        continue;  // in the group of a page still running: its end kills it
      if (group == pid) ::kill(-pid, SIGKILL);  // its own group: what it started
      ::kill(pid, SIGKILL);
    }
    // A killed process takes a moment to end: one yield lets the ones that
    // can end at once do so, so most are reaped by this call.
    if (!orphans.empty()) ::sched_yield();
    for (pid_t pid : orphans)
      if (try_reap(pid)) ++reaped;
    if (reaped == before) break;
  }
  return reaped;
}

namespace {

// A file descriptor for the session text when it is too large for one
// environment variable: a sealed memfd, so the page can read it and nothing
// can change it.
class SessionFile {
 public:
  explicit SessionFile(std::string_view text) {
    fd_ = ::memfd_create("sessiond-session", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd_ < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
    while (!text.empty()) {
      ssize_t n = ::write(fd_, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        ::close(fd_);
        throw std::runtime_error(std::string("session file: ") + std::strerror(e));
      }
      text.remove_prefix(static_cast<std::size_t>(n));
    }
    ::fcntl(fd_, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
    ::lseek(fd_, 0, SEEK_SET);
  }
  ~SessionFile() { ::close(fd_); }
  SessionFile(const SessionFile&) = delete;
  SessionFile& operator=(const SessionFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace

RunResult PageRunner::Run(const RunInput& input) const {
  std::vector<std::string> env;
  env.reserve(input.env.size() + 8);
  std::string script_name;
  for (const std::string& kv : input.env) {
    std::string_view name = std::string_view(kv).substr(0, kv.find('='));
    if (name == "SCRIPT_NAME") script_name = kv.substr(12);
    if (name == "PATH" || name == "SCRIPT_FILENAME" || name == "SCRIPT_NAME" || name == "PATH_INFO" ||
        name == "PATH_TRANSLATED")
      continue;
    env.push_back(kv);
  }
  env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  env.push_back("SCRIPT_FILENAME=" + path_);
  if (!path_info_.empty()) {
    if (script_name.size() >= path_info_.size() &&
        script_name.compare(script_name.size() - path_info_.size(), std::string::npos, path_info_) == 0)
      script_name.resize(script_name.size() - path_info_.size());
    env.push_back("PATH_INFO=" + path_info_);
  }
  env.push_back("SCRIPT_NAME=" + script_name);

  // Linux refuses an environment string of 128 KiB or more (MAX_ARG_STRLEN):
  // a larger session reaches the page as a file on fd 3 instead, so every
  // session the store accepted can be delivered (and abandoned).
  constexpr std::size_t kMaxEnvString = 128 * 1024 - 1;
  std::string left_out = AppendSession(env, input.session, kMaxEnvString, input.session_off);
  std::optional<SessionFile> file;
  if (!left_out.empty()) {
    file.emplace(left_out);
    env.emplace_back("SESSION_FILE=/dev/fd/3");
  }

  PageSpec spec;
  spec.path = path_;
  spec.env = std::move(env);
  const SpillBuffer& body = *input.body;
  if (body.spilled()) spec.input_fd = body.fd();
  else spec.input = body.head();
  spec.extra_fd = file ? file->fd() : -1;
  spec.user = user_;
  RunResult result = RunPage(spec, limits_);
  if (result.outcome == RunResult::Outcome::SpawnFailed)
    result.detail = std::string("could not be started: ") + std::strerror(result.exit_code);
  return result;
}

}  // namespace sessiond
