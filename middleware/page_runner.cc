#include "middleware/page_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace sessiond {
namespace {

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

// The spawned page: killed with its whole process group and reaped unless
// Wait() reaped it, so no exit path leaves a zombie or a runaway page.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) {
      Kill();
      Wait();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void Kill() { ::kill(-pid_, SIGKILL); }
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

// posix_spawn attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

std::string DirectoryOf(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

PageResult RunPage(const std::string& path, const std::vector<std::string>& env,
                   std::string_view input, const PageLimits& limits) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + limits.timeout;
  PageResult result;

  Pipe in, out, err;
  for (Pipe* p : {&in, &out, &err}) {
    if (int e = MakePipe(*p)) {
      result.exit_code = e;
      return result;
    }
  }

  SpawnSetup s;
  // The page's standard streams; dup2 clears close-on-exec on the copies only.
  posix_spawn_file_actions_adddup2(&s.actions, in.read.get(), 0);
  posix_spawn_file_actions_adddup2(&s.actions, out.write.get(), 1);
  posix_spawn_file_actions_adddup2(&s.actions, err.write.get(), 2);
  std::string dir = DirectoryOf(path);
  posix_spawn_file_actions_addchdir_np(&s.actions, dir.c_str());
  // Own process group, so a timeout kills whatever the page started too. The
  // server blocks SIGTERM/SIGINT and ignores SIGPIPE; the page gets defaults.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) sigaddset(&defaults, sig);
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&s.attr, 0);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &defaults);

  std::vector<char*> argv{const_cast<char*>(path.c_str()), nullptr};
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  if (int e = posix_spawn(&pid, path.c_str(), &s.actions, &s.attr, argv.data(), envp.data())) {
    result.exit_code = e;
    return result;
  }
  Child child(pid);
  in.read.Close();
  out.write.Close();
  err.write.Close();
  // Readable once the page has exited. (glibc 2.36's <sys/pidfd.h> lacks C
  // linkage for C++, hence the raw syscall.) Without it (old kernels) the
  // loop ends at EOF on the page's output and waitpid() blocks.
  Fd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (int fd : {in.write.get(), out.read.get(), err.read.get()})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (input.empty()) in.write.Close();

  std::size_t written = 0;
  char buf[65536];
  // Until stdout and stderr reach EOF and the page has exited.
  while (out.read.open() || err.read.open() || exited.open()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      child.Kill();
      child.Wait();
      result.outcome = PageResult::Outcome::TimedOut;
      return result;
    }
    pollfd fds[4] = {{in.write.get(), POLLOUT, 0},
                     {out.read.get(), POLLIN, 0},
                     {err.read.get(), POLLIN, 0},
                     {exited.get(), POLLIN, 0}};
    int n = ::poll(fds, 4, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents) {
      ssize_t w = ::write(in.write.get(), input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      // A page may exit without reading its body (EPIPE): that is its right.
      if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in.write.Close();
    }
    if (fds[1].revents) {
      ssize_t r = ::read(out.read.get(), buf, sizeof buf);
      if (r > 0) {
        result.output.append(buf, static_cast<std::size_t>(r));
        if (result.output.size() > limits.max_output) {
          child.Kill();
          child.Wait();
          result.outcome = PageResult::Outcome::OutputTooLarge;
          return result;
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        out.read.Close();
      }
    }
    if (fds[2].revents) {
      ssize_t r = ::read(err.read.get(), buf, sizeof buf);
      if (r > 0) {
        std::size_t room = limits.max_stderr - std::min(limits.max_stderr, result.errors.size());
        result.errors.append(buf, std::min(room, static_cast<std::size_t>(r)));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        err.read.Close();
      }
    }
    if (fds[3].revents) exited.Close();
  }
  int status = child.Wait();
  if (WIFSIGNALED(status)) {
    result.outcome = PageResult::Outcome::Signaled;
    result.exit_code = WTERMSIG(status);
  } else {
    result.outcome = PageResult::Outcome::Exited;
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace sessiond
