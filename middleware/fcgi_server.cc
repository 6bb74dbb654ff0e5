#include "middleware/fcgi_server.h"

#include <fcgiapp.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "log/log.h"

namespace sessiond {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

constexpr int kBacklog = 1024;

// Binds under a temporary name and renames into place once listening, so a
// client (or a test) that sees the path can connect at once.
int ListenUnix(const std::string& path, unsigned mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string tmp = path + ".new";
  if (tmp.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket");
  // Refuse to steal the path from a server that is still answering on it.
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ::close(fd);
    throw std::runtime_error("another server is listening on " + path);
  }
  ::close(fd);
  fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::memcpy(addr.sun_path, tmp.c_str(), tmp.size() + 1);
  ::unlink(tmp.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Fail("bind " + tmp);
  if (::chmod(tmp.c_str(), mode) != 0) Fail("chmod " + tmp);
  if (::listen(fd, kBacklog) != 0) Fail("listen " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) Fail("rename " + tmp + " to " + path);
  return fd;
}

int ListenTcp(const std::string& hostport) {
  std::size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("--listen wants unix:PATH or HOST:PORT");
  std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res))
    throw std::runtime_error("cannot resolve " + hostport + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) Fail("bind " + hostport);
  if (::listen(fd, kBacklog) != 0) Fail("listen " + hostport);
  return fd;
}

// One accepted FastCGI request, seen through the Request interface.
class FcgiRequest final : public Request {
 public:
  explicit FcgiRequest(FCGX_Request& r) : r_(r) {}
  std::vector<std::string_view> Environment() const override {
    std::vector<std::string_view> env;
    for (char** p = r_.envp; p && *p; ++p) env.emplace_back(*p);
    return env;
  }
  std::size_t ReadBody(char* buf, std::size_t size) override {
    int n = FCGX_GetStr(buf, static_cast<int>(size), r_.in);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  void Write(std::string_view bytes) override {
    // A web server that hung up gets nothing; the session was committed already.
    FCGX_PutStr(bytes.data(), static_cast<int>(bytes.size()), r_.out);
  }

 private:
  FCGX_Request& r_;
};

}  // namespace

FcgiServer::FcgiServer(const std::string& listen, unsigned socket_mode) {
  if (FCGX_Init() != 0) throw std::runtime_error("FCGX_Init failed");
  if (listen.empty()) {
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (::getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting)
      throw std::runtime_error("no --listen given and fd 0 is not a listening socket");
    fd_ = 0;
  } else if (listen.rfind("unix:", 0) == 0) {
    unix_path_ = listen.substr(5);
    fd_ = ListenUnix(unix_path_, socket_mode);
  } else {
    fd_ = ListenTcp(listen);
  }
}

FcgiServer::~FcgiServer() {
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  if (fd_ > 0) ::close(fd_);
}

void FcgiServer::Serve(int workers, const std::function<RequestHandler()>& make_handler) {
  std::vector<std::thread> threads;
  std::exception_ptr failed;
  std::mutex failed_mutex;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&] {
      FCGX_Request raw;
      FCGX_InitRequest(&raw, fd_, 0);
      try {
        RequestHandler handle = make_handler();
        while (!stopping_) {
          if (FCGX_Accept_r(&raw) != 0) {
            // EMFILE and the like: say so, give the system a moment, go on.
            if (!stopping_) {
              LogLine(std::string("accept failed: ") + std::strerror(errno));
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            continue;
          }
          FcgiRequest request(raw);
          handle(request);
          FCGX_Finish_r(&raw);
        }
      } catch (...) {
        std::lock_guard lock(failed_mutex);
        if (!failed) failed = std::current_exception();
        Stop();
      }
      FCGX_Free(&raw, 1);
    });
  }
  for (auto& t : threads) t.join();
  if (failed) std::rethrow_exception(failed);
}

void FcgiServer::Stop() {
  if (stopping_.exchange(true)) return;
  // Wakes every thread blocked in accept(): it returns EINVAL, and libfcgi
  // hands that back as a failed FCGX_Accept_r.
  ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace sessiond
