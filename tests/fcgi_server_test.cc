// The FastCGI server at its socket: a real listening socket in a temporary
// directory, a raw FastCGI client, and handlers that block, throw or echo.
#include "middleware/server/fcgi_server.h"

#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "middleware/base/metrics.h"
#include "middleware/fastcgi/fcgi_record.h"
#include "middleware/server/event_loop.h"

using namespace sessiond;
namespace fs = std::filesystem;

namespace {

// A gate a handler waits at until the test opens it; the test can wait until
// `n` handlers are waiting.
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(m_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void WaitForWaiting(int n) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return waiting_ >= n; });
  }
  void Open() {
    std::lock_guard lock(m_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

struct Reply {
  std::string out;          // FCGI_STDOUT bytes
  int protocol_status = -1;  // of FCGI_END_REQUEST; -1: none came
  bool closed = false;      // the server closed the connection
  int status() const { return out.rfind("Status: ", 0) == 0 ? std::stoi(out.substr(8, 3)) : 200; }
};

class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{20, 0};  // a hang guard only
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() { ::close(fd_); }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // BEGIN_REQUEST and the whole parameter block.
  void Begin(std::vector<std::string> params, std::uint16_t id = 1, bool keep = false) {
    std::string out, pairs;
    fcgi::AppendBeginRequest(out, id, fcgi::kResponder, keep);
    for (const std::string& kv : params) {
      std::size_t eq = kv.find('=');
      fcgi::AppendNameValue(pairs, kv.substr(0, eq), kv.substr(eq + 1));
    }
    fcgi::AppendRecords(out, fcgi::kParams, id, pairs);
    fcgi::AppendRecords(out, fcgi::kParams, id, {});
    Send(out);
  }
  void Body(std::string_view body, std::uint16_t id = 1, bool end = true) {
    std::string out;
    if (!body.empty()) fcgi::AppendRecords(out, fcgi::kStdin, id, body);
    if (end) fcgi::AppendRecords(out, fcgi::kStdin, id, {});
    Send(out);
  }
  Reply Request(std::vector<std::string> params, std::string_view body = {}, std::uint16_t id = 1,
                bool keep = false) {
    Begin(std::move(params), id, keep);
    Body(body, id);
    return Read(id);
  }
  // Reads what arrives in one read() of up to `n` bytes (framing ignored).
  Reply ReadSome(std::size_t n) {
    Reply reply;
    std::string buf(n, '\0');
    ssize_t got = ::read(fd_, buf.data(), n);
    if (got <= 0) reply.closed = true;
    else reply.out.assign(buf, 0, static_cast<std::size_t>(got));
    return reply;
  }
  // Reads until FCGI_END_REQUEST for `id`, or until the server closes.
  Reply Read(std::uint16_t id = 1) {
    Reply reply;
    for (;;) {
      fcgi::Record r;
      std::size_t used = 0;
      while (fcgi::ParseRecord(in_, r, used) == fcgi::Parse::kRecord) {
        std::string content(r.content);
        std::uint8_t type = r.type;
        in_.erase(0, used);
        if (type == fcgi::kStdout) reply.out += content;
        if (type == fcgi::kEndRequest && r.request_id == id) {
          reply.protocol_status = static_cast<unsigned char>(content[4]);
          return reply;
        }
        if (type == fcgi::kGetValuesResult) reply.out += content;
        if (type == fcgi::kGetValuesResult) return reply;
      }
      char buf[65536];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) {
        reply.closed = true;
        return reply;
      }
      in_.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string in_;
};

// A unix socket bound at `path`, not listening: what a server leaves there.
int BoundUnixSocket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// A server on a fresh unix socket, serving on its own thread until the end.
struct Server {
  fs::path dir;
  std::string sock;
  ServerOptions options;
  std::unique_ptr<FcgiServer> server;
  std::thread thread;
  std::exception_ptr failed;

  explicit Server(std::function<void(ServerOptions&)> tune = {}) {
    char tmpl[] = "/tmp/sessiond-server-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    sock = (dir / "s.sock").string();
    options.listen = "unix:" + sock;
    options.workers = 2;
    options.max_body_bytes = 1000;
    options.body_memory = 100;
    options.temp_dir = dir.string();
    if (tune) tune(options);
  }
  void Start(FcgiServer::RequestHandler handler) {
    server = std::make_unique<FcgiServer>(options);
    thread = std::thread([this, handler] {
      try {
        server->Serve([handler] { return handler; });
      } catch (...) {
        failed = std::current_exception();
      }
    });
  }
  // Each worker's handler from `make_handler`, called as Serve() calls it.
  void StartWith(std::function<FcgiServer::RequestHandler()> make_handler) {
    server = std::make_unique<FcgiServer>(options);
    thread = std::thread([this, make_handler] {
      try {
        server->Serve(make_handler);
      } catch (...) {
        failed = std::current_exception();
      }
    });
  }
  void StopAndJoin() {
    if (!thread.joinable()) return;
    server->Stop();
    thread.join();
  }
  ~Server() {
    StopAndJoin();
    server.reset();
    fs::remove_all(dir);
  }
};

// The sessiond_queue_length gauge of the metrics.
double QueueLength() {
  std::string text = ProcessMetrics().Render(std::nullopt);
  const std::string name = "\nsessiond_queue_length ";
  std::size_t at = text.find(name);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + name.size()));
}

std::string ParamOf(Request& r, std::string_view name) { return std::string(r.Param(name).value_or("")); }

// Answers "<URI> <body>" as a CGI response.
void Echo(Request& r) {
  r.Write("Content-Type: text/plain\r\n\r\n" + ParamOf(r, "REQUEST_URI") + ' ' + r.Body().str());
}

// Echo, but a request for /hold first waits at `gate`.
FcgiServer::RequestHandler EchoHoldingAt(Gate& gate) {
  return [&gate](Request& r) {
    if (ParamOf(r, "REQUEST_URI") == "/hold") gate.Wait();
    Echo(r);
  };
}

// Sends a request for /hold through `client` and returns once a worker is
// waiting at `gate` with it: with one worker, the server is then busy.
void HoldWorker(Client& client, Gate& gate) {
  client.Begin({"REQUEST_URI=/hold"});
  client.Body({});
  gate.WaitForWaiting(1);
}

}  // namespace

TEST_CASE("a request arrives whole, the response goes back framed", "[server]") {
  Server s;
  s.Start(Echo);
  Client c(s.sock);
  Reply reply = c.Request({"REQUEST_URI=/x", "CONTENT_LENGTH=5"}, "hello");
  CHECK(reply.out == "Content-Type: text/plain\r\n\r\n/x hello");
  CHECK(reply.protocol_status == fcgi::kRequestComplete);
}

TEST_CASE("a body past memory is spilled and still arrives whole", "[server]") {
  Server s;
  s.Start(Echo);
  Client c(s.sock);
  std::string body(900, 'b');
  CHECK(c.Request({"REQUEST_URI=/big"}, body).out.find("/big " + body) != std::string::npos);
}

TEST_CASE("a handler that throws fails its own request, not the server", "[server]") {
  Server s;
  s.Start([](Request& r) {
    std::string uri = ParamOf(r, "REQUEST_URI");
    if (uri == "/std") throw std::runtime_error("boom");
    if (uri == "/other") throw 42;
    Echo(r);
  });
  for (const char* uri : {"/std", "/other", "/std"}) {
    Client c(s.sock);
    CHECK(c.Request({std::string("REQUEST_URI=") + uri}).status() == 500);
  }
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/fine"}).out.find("/fine") != std::string::npos);
}

// A worker opens its own store connection as it starts, after sessiond has
// started serving; the database may be out of reach at that moment (a
// restart, a cut link, a role's connection limit). That worker answers 503
// and tries again at its next request; the server goes on.
TEST_CASE("a worker whose handler cannot be made answers 503 and tries again", "[server]") {
  Server s([](ServerOptions& o) { o.workers = 1; });
  std::atomic<int> calls{0};
  s.StartWith([&calls]() -> FcgiServer::RequestHandler {
    if (++calls <= 2) throw std::runtime_error("database out of reach");
    return Echo;
  });
  {
    Client c(s.sock);
    CHECK(c.Request({"REQUEST_URI=/first"}).status() == 503);
  }
  for (const char* uri : {"/second", "/third"}) {
    Client c(s.sock);
    CHECK(c.Request({std::string("REQUEST_URI=") + uri}).out.find(uri) != std::string::npos);
  }
  CHECK(calls == 3);  // made once it could be, then kept
  s.StopAndJoin();
  CHECK_FALSE(s.failed);
}

TEST_CASE("idle and half-sent connections do not hold a worker", "[server]") {
  Server s([](ServerOptions& o) { o.workers = 1; });
  s.Start(Echo);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(std::make_unique<Client>(s.sock));
  for (int i = 0; i < 16; ++i) {
    auto half = std::make_unique<Client>(s.sock);
    half->Begin({"REQUEST_URI=/half", "CONTENT_LENGTH=500"});
    half->Body(std::string(100, 'h'), 1, false);
    idle.push_back(std::move(half));
  }
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/served"}).out.find("/served") != std::string::npos);
}

TEST_CASE("at the connection limit, idle connections make room for new ones", "[server]") {
  Server s([](ServerOptions& o) { o.max_connections = 8; });
  s.Start(Echo);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(std::make_unique<Client>(s.sock));
  // A client may connect a moment before it writes: silent connections are
  // spared for a quarter of a second (this wait is what is tested).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/room"}).out.find("/room") != std::string::npos);
  // The oldest idle ones were closed to make room.
  CHECK(idle.front()->Read().closed);
}

TEST_CASE("a full queue answers 503 at once", "[server]") {
  Gate gate;
  Server s([](ServerOptions& o) {
    o.workers = 1;
    o.queue_size = 1;
  });
  s.Start(EchoHoldingAt(gate));
  Client held(s.sock);
  HoldWorker(held, gate);
  Client b(s.sock), c(s.sock);
  b.Begin({"REQUEST_URI=/b"});
  b.Body({});
  c.Begin({"REQUEST_URI=/c"});
  c.Body({});
  // b and c arrive in either order: one waits in the queue, the other finds
  // it full and is answered at once, while the worker is still held.
  std::mutex m;
  std::condition_variable answered;
  int first = -1;
  Reply replies[2];
  auto read = [&](int i, Client& client) {
    replies[i] = client.Read();
    std::lock_guard lock(m);
    if (first < 0) first = i;
    answered.notify_all();
  };
  std::thread reader_b(read, 0, std::ref(b)), reader_c(read, 1, std::ref(c));
  {
    std::unique_lock lock(m);
    answered.wait(lock, [&] { return first >= 0; });
  }
  CHECK(replies[first].status() == 503);
  gate.Open();
  reader_b.join();
  reader_c.join();
  CHECK(replies[1 - first].status() == 200);
  CHECK(held.Read().status() == 200);
}

TEST_CASE("parameters and bodies over their limits are refused", "[server]") {
  Server s([](ServerOptions& o) { o.max_params_bytes = 2048; });
  s.Start(Echo);
  {
    Client c(s.sock);
    Reply r = c.Request({"REQUEST_URI=/p", "HTTP_X=" + std::string(4096, 'x')});
    CHECK(r.status() == 400);
    CHECK(c.Read().closed);  // and the connection is closed after it
  }
  {
    Client c(s.sock);
    CHECK(c.Request({"REQUEST_URI=/b", "CONTENT_LENGTH=1001"}).status() == 413);
  }
  {
    Client c(s.sock);
    CHECK(c.Request({"REQUEST_URI=/b"}, std::string(1001, 'x')).status() == 413);  // no length given
  }
  for (const char* bad : {"CONTENT_LENGTH=-1", "CONTENT_LENGTH=12abc", "CONTENT_LENGTH=99999999999999999999"}) {
    Client c(s.sock);
    CHECK(c.Request({"REQUEST_URI=/b", bad}).status() == 400);
  }
}

TEST_CASE("a kept connection serves one request after another", "[server]") {
  Server s;
  s.Start(Echo);
  Client c(s.sock);
  for (std::uint16_t id = 1; id <= 3; ++id) {
    Reply r = c.Request({"REQUEST_URI=/k" + std::to_string(id)}, {}, id, true);
    CHECK(r.out.find("/k" + std::to_string(id)) != std::string::npos);
    CHECK_FALSE(r.closed);
  }
}

TEST_CASE("management records, roles and multiplexing are answered", "[server]") {
  Server s;
  s.Start(Echo);
  Client c(s.sock);
  std::string out, pairs;
  fcgi::AppendNameValue(pairs, "FCGI_MPXS_CONNS", "");
  fcgi::AppendRecords(out, fcgi::kGetValues, 0, pairs);
  c.Send(out);
  std::vector<std::string> values;
  REQUIRE(fcgi::ParseNameValues(c.Read(0).out, values));
  CHECK(values == std::vector<std::string>{"FCGI_MPXS_CONNS=0"});

  out.clear();
  fcgi::AppendBeginRequest(out, 5, 2 /* authorizer */, true);
  c.Send(out);
  CHECK(c.Read(5).protocol_status == fcgi::kUnknownRole);

  c.Begin({"REQUEST_URI=/one"}, 1, true);
  out.clear();
  fcgi::AppendBeginRequest(out, 2, fcgi::kResponder, true);
  c.Send(out);
  CHECK(c.Read(2).protocol_status == fcgi::kCantMpxConn);
  c.Body({}, 1);
  CHECK(c.Read(1).out.find("/one") != std::string::npos);
}

TEST_CASE("stopping serves every connection accepted before it, then returns", "[server]") {
  Gate gate;
  Server s([](ServerOptions& o) { o.workers = 1; });
  s.Start(EchoHoldingAt(gate));
  Client held(s.sock);
  HoldWorker(held, gate);
  std::vector<std::unique_ptr<Client>> queued;
  for (int i = 0; i < 5; ++i) {
    queued.push_back(std::make_unique<Client>(s.sock));  // connected: accepted by the kernel
    queued.back()->Begin({"REQUEST_URI=/q" + std::to_string(i)});
    queued.back()->Body({});
  }
  s.server->Stop();
  gate.Open();
  CHECK(held.Read().status() == 200);
  for (int i = 0; i < 5; ++i) CHECK(queued[i]->Read().out.find("/q" + std::to_string(i)) != std::string::npos);
  s.thread.join();
  CHECK_FALSE(fs::exists(s.sock));
}

TEST_CASE("malformed listen addresses are settings errors", "[server]") {
  for (const char* bad : {"127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:0", "nonsense", "unix:", "127.0.0.1:9x"}) {
    ServerOptions o;
    o.listen = bad;
    CHECK_THROWS_AS(FcgiServer(o), BadSetting);
  }
}

TEST_CASE("a path that holds anything but a stale socket is refused", "[server]") {
  Server s;
  std::ofstream(s.sock) << "precious";
  CHECK_THROWS_WITH(FcgiServer(s.options), Catch::Contains("not a socket"));
  std::ifstream in(s.sock);
  std::string content;
  in >> content;
  CHECK(content == "precious");
}

TEST_CASE("a request that waits past queue_timeout is answered 503 while the worker is still busy", "[server]") {
  Gate gate;
  Server s([](ServerOptions& o) {
    o.workers = 1;
    o.queue_timeout = std::chrono::milliseconds(200);
  });
  s.Start(EchoHoldingAt(gate));
  Client held(s.sock);
  HoldWorker(held, gate);
  Client queued(s.sock);
  // Answered with the gate still shut: the loop, not a worker, refused it.
  CHECK(queued.Request({"REQUEST_URI=/queued"}).status() == 503);
  // ... and it no longer counts as waiting.
  CHECK(QueueLength() == 0);
  gate.Open();
  CHECK(held.Read().status() == 200);
}

TEST_CASE("a web server that reads a trickle gets io_timeout for the whole response", "[server]") {
  Server s([](ServerOptions& o) {
    o.workers = 1;
    o.io_timeout = std::chrono::milliseconds(500);
  });
  const std::string big(8 << 20, 'x');
  s.Start([&](Request& r) {
    if (ParamOf(r, "REQUEST_URI") == "/big") r.Write("Content-Type: text/plain\r\n\r\n" + big);
    else Echo(r);
  });
  Client slow(s.sock);
  slow.Begin({"REQUEST_URI=/big"});
  slow.Body({});
  // Reading 64 KiB every 20 ms would take seconds for 8 MiB: the worker
  // must give up on it after io_timeout instead, and close the connection.
  std::size_t got = 0;
  for (int i = 0; i < 1000; ++i) {  // bounded: 20 s at most
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Reply chunk = slow.ReadSome(65536);
    got += chunk.out.size();
    if (chunk.closed) break;
  }
  CHECK(got < big.size());
  Client next(s.sock);
  CHECK(next.Request({"REQUEST_URI=/next"}).out.find("/next") != std::string::npos);
}

TEST_CASE("stopping does not wait io_timeout for a connection that never sends", "[server]") {
  Server s([](ServerOptions& o) { o.io_timeout = std::chrono::hours(1); });
  s.Start(Echo);
  Client silent(s.sock);
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/x"}).status() == 200);
  s.StopAndJoin();  // with an hour's wait for `silent`, the test would time out here
  CHECK(silent.Read().closed);
}

TEST_CASE("a body that disagrees with CONTENT_LENGTH is refused", "[server]") {
  Server s;
  s.Start(Echo);
  {
    Client c(s.sock);
    CHECK(c.Request({"REQUEST_URI=/b", "CONTENT_LENGTH=5"}, "twenty bytes of body").status() == 400);
  }
  {
    Client c(s.sock);
    CHECK(c.Request({"REQUEST_URI=/b", "CONTENT_LENGTH=50"}, "abc").status() == 400);
  }
}

TEST_CASE("nothing beside the socket path is replaced while it is set up", "[server]") {
  Server s;
  std::ofstream(s.sock + ".new") << "precious";
  s.Start(Echo);
  std::ifstream in(s.sock + ".new");
  std::string content;
  in >> content;
  CHECK(content == "precious");
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/x"}).status() == 200);
}

TEST_CASE("a unix socket a running server holds is a settings error, and stays in place", "[server]") {
  Server s;
  s.Start(Echo);
  struct stat before;
  REQUIRE(::stat(s.sock.c_str(), &before) == 0);
  CHECK_THROWS_AS(FcgiServer(s.options), BadSetting);
  CHECK_THROWS_WITH(FcgiServer(s.options), Catch::Contains(s.sock + " is in use by a running server"));
  struct stat after;
  REQUIRE(::stat(s.sock.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/still"}).out.find("/still") != std::string::npos);
  // serve --test says so, and that is no settings error.
  std::vector<std::string> notes = ListenNotes(s.options);
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("is in use by a running server"));
  CHECK_NOTHROW(CheckListenAddress(s.options.listen));
}

TEST_CASE("a stale socket, where nobody listens, is replaced", "[server]") {
  Server s;
  ::close(BoundUnixSocket(s.sock));  // a sessiond killed -9 leaves this behind
  CHECK(ListenNotes(s.options).empty());
  s.Start(Echo);
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/new"}).out.find("/new") != std::string::npos);
}

TEST_CASE("the socket owner and group options name a user and a group that exist", "[server][settings]") {
  ServerOptions o;
  o.listen = "unix:/tmp/sessiond-owner-test.sock";
  o.socket_owner = "no-such-user-sessiond";
  CHECK_THROWS_MATCHES(ResolveSocketOwnership(o), BadSetting,
                       Catch::Matchers::Message("--socket-owner no-such-user-sessiond: no such user"));
  o.socket_owner.clear();
  o.socket_group = "no-such-group-sessiond";
  CHECK_THROWS_MATCHES(ResolveSocketOwnership(o), BadSetting,
                       Catch::Matchers::Message("--socket-group no-such-group-sessiond: no such group"));
  // sessiond's own user and group are always fine.
  o.socket_owner = ::getpwuid(::geteuid())->pw_name;
  o.socket_group = ::getgrgid(::getegid())->gr_name;
  SocketOwnership own = ResolveSocketOwnership(o);
  CHECK(own.uid == ::geteuid());
  CHECK(own.gid == ::getegid());
  // Neither given: the socket keeps sessiond's.
  ServerOptions neither;
  neither.listen = o.listen;
  SocketOwnership none = ResolveSocketOwnership(neither);
  CHECK(none.uid == static_cast<uid_t>(-1));
  CHECK(none.gid == static_cast<gid_t>(-1));
}

TEST_CASE("without root, another owner for the socket is refused at start", "[server][settings]") {
  if (::geteuid() == 0) {
    // As root, the check is made by a process that dropped root.
    SUCCEED("run as root: covered by e2e.socket_owner");
    return;
  }
  ServerOptions o;
  o.socket_owner = "root";
  CHECK_THROWS_WITH(ResolveSocketOwnership(o), Catch::Contains("only root can give the socket another owner"));
}

TEST_CASE("the socket appears with the owner and group asked for", "[server]") {
  const bool root = ::geteuid() == 0;
  struct passwd* nobody = ::getpwnam("nobody");
  struct group* group = root ? ::getgrnam("nogroup") : ::getgrgid(::getegid());
  REQUIRE(group);
  const gid_t gid = group->gr_gid;
  const uid_t uid = root && nobody ? nobody->pw_uid : ::geteuid();
  Server s([&](ServerOptions& o) {
    o.socket_group = group->gr_name;
    if (root && nobody) o.socket_owner = "nobody";
  });
  s.Start(Echo);
  struct stat st;
  REQUIRE(::stat(s.sock.c_str(), &st) == 0);
  CHECK(st.st_gid == gid);
  CHECK(st.st_uid == uid);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("the socket owner and group options are ignored, with a note, for an inherited or TCP socket",
          "[server][settings]") {
  ServerOptions o;
  o.socket_group = "nogroup";
  std::vector<std::string> notes = ListenNotes(o);
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("ignored: the socket is inherited") && Catch::Contains("SocketGroup="));
  o.listen = "127.0.0.1:9";
  notes = ListenNotes(o);
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("is TCP"));
}

TEST_CASE("a server whose backlog is full still holds its socket, and the check does not wait for it", "[server]") {
  Server s;
  // A listener that never accepts, its backlog filled: a stopped or wedged server.
  int busy = BoundUnixSocket(s.sock);
  REQUIRE(::listen(busy, 0) == 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, s.sock.c_str(), s.sock.size() + 1);
  std::vector<int> clients;
  for (int i = 0; i < 16; ++i) {
    int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    clients.push_back(c);
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno == EAGAIN) break;
  }
  // In a child bounded by an alarm: a blocking check would hang here.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(10);
    int code = 1;
    try {
      FcgiServer server(s.options);
    } catch (const BadSetting& e) {
      code = std::string(e.what()).find("is in use by a running server") != std::string::npos ? 0 : 2;
    } catch (...) {
      code = 3;
    }
    if (code == 0 && ListenNotes(s.options).size() != 1) code = 4;
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (int c : clients) ::close(c);
  ::close(busy);
}

TEST_CASE("two servers started at once on one path: one serves, the other is told it is in use", "[server]") {
  for (int round = 0; round < 40; ++round) {
    Server s;
    std::atomic<int> ready{0};
    std::atomic<int> started{0}, in_use{0};
    std::unique_ptr<FcgiServer> servers[2];
    auto start = [&](int i) {
      ++ready;
      while (ready.load() < 2) {
      }
      try {
        servers[i] = std::make_unique<FcgiServer>(s.options);
        ++started;
      } catch (const BadSetting& e) {
        if (std::string(e.what()).find("is in use") != std::string::npos) ++in_use;
      }
    };
    std::thread a(start, 0), b(start, 1);
    a.join();
    b.join();
    INFO("round " << round);
    REQUIRE(started == 1);
    REQUIRE(in_use == 1);
  }
}

TEST_CASE("a unix --listen path is at most 90 bytes, so the temporary name beside it fits, in --test too", "[server]") {
  Server s;
  std::string base = s.dir.string() + "/";
  std::string at_limit = base + std::string(90 - base.size(), 'p');
  std::string past = at_limit + "p";
  CHECK_NOTHROW(CheckListenAddress("unix:" + at_limit));
  CHECK_THROWS_WITH(CheckListenAddress("unix:" + past), Catch::Contains("socket path too long (at most 90 bytes"));
  ServerOptions o = s.options;
  o.listen = "unix:" + at_limit;
  CHECK_NOTHROW(FcgiServer(o));
  o.listen = "unix:" + past;
  CHECK_THROWS_WITH(FcgiServer(o), Catch::Contains("socket path too long (at most 90 bytes"));
}

TEST_CASE("socket owner and group names are not checked where they do not apply", "[server][settings]") {
  ServerOptions o;
  o.socket_group = "no-such-group-sessiond";
  o.socket_owner = "no-such-user-sessiond";
  CHECK_NOTHROW(ResolveSocketOwnership(o));  // inherited
  o.listen = "127.0.0.1:9";
  CHECK_NOTHROW(ResolveSocketOwnership(o));  // TCP
  o.listen = "unix:/tmp/x.sock";
  CHECK_THROWS_AS(ResolveSocketOwnership(o), BadSetting);
}

TEST_CASE("serve --test says who can connect to the socket, and what the web server's user needs", "[server][settings]") {
  ServerOptions o;
  o.listen = "unix:/run/sessiond/s.sock";
  std::string who = WhoCanConnect(o);
  CHECK_THAT(who, Catch::StartsWith("the socket /run/sessiond/s.sock will be ") && Catch::Contains(", mode 0660"));
  if (::getgrnam("www-data") && ::getegid() != ::getgrnam("www-data")->gr_gid) {
    CHECK_THAT(who, Catch::Contains("--socket-group www-data lets them"));
    if (::geteuid() == 0) {
      o.socket_group = "www-data";
      CHECK_THAT(WhoCanConnect(o), Catch::EndsWith(":www-data, mode 0660"));
    }
  }
  o.socket_group.clear();
  o.socket_mode = 0666;
  CHECK_THAT(WhoCanConnect(o), Catch::EndsWith(", mode 0666"));
  o.listen = "127.0.0.1:9000";
  CHECK(WhoCanConnect(o).empty());
  o.listen.clear();
  CHECK(WhoCanConnect(o).empty());
}

namespace {
// Refuses to watch accepted connections (sockets that do not listen) while
// `refusals` lasts, as the kernel does past fs.epoll.max_user_watches.
std::atomic<int> refusals{0};
int RefusingEpollCtl(int epfd, int op, int fd, epoll_event* ev) {
  int listens = 0;
  socklen_t len = sizeof listens;
  bool accepted = ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listens, &len) == 0 && !listens;
  if (op == EPOLL_CTL_ADD && accepted && refusals > 0) {
    --refusals;
    errno = ENOSPC;
    return -1;
  }
  return ::epoll_ctl(epfd, op, fd, ev);
}
struct RefusingEpoll {
  explicit RefusingEpoll(int n) {
    refusals = n;
    SetEpollCtl(RefusingEpollCtl);
  }
  ~RefusingEpoll() { SetEpollCtl(nullptr); }
};
}  // namespace

TEST_CASE("a connection the kernel will not watch is closed alone, and the server goes on", "[server]") {
  Server s;
  RefusingEpoll refusing(1);
  s.Start(Echo);
  {
    // Connected, nothing sent: the loop must watch it to wait for a request,
    // and the kernel refuses. The connection ends (EOF), within a bound.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, s.sock.c_str(), sizeof addr.sun_path - 1);
    for (int i = 0; i < 500 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // until the server listens
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 20000) == 1);
    char byte;
    CHECK(::read(fd, &byte, 1) == 0);
    ::close(fd);
  }
  CHECK(refusals == 0);
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/next"}).out.find("/next") != std::string::npos);
  s.StopAndJoin();
  CHECK_FALSE(s.failed);
}

TEST_CASE("a kept connection the kernel will not watch again ends after a whole answer", "[server]") {
  Server s;
  s.Start(Echo);
  Client kept(s.sock);
  Reply first = kept.Request({"REQUEST_URI=/k1"}, {}, 1, true);
  REQUIRE(first.protocol_status == fcgi::kRequestComplete);
  // From here the next watch of the connection (its return from a worker)
  // is refused: the connection ends after the answer that was under way,
  // every answer it gave arrived whole, and the server goes on.
  RefusingEpoll refusing(1);
  bool closed = false;
  for (std::uint16_t id = 2; id <= 4 && !closed; ++id) {
    Reply r = kept.Request({"REQUEST_URI=/k" + std::to_string(id)}, {}, id, true);
    closed = r.closed;
    if (!r.out.empty()) CHECK(r.protocol_status == fcgi::kRequestComplete);
  }
  CHECK(closed);
  CHECK(refusals == 0);
  Client c(s.sock);
  CHECK(c.Request({"REQUEST_URI=/next"}).out.find("/next") != std::string::npos);
  s.StopAndJoin();
  CHECK_FALSE(s.failed);
}
