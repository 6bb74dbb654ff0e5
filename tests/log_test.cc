#include "log/log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <future>
#include <string>
#include <vector>

#include "log/redact.h"

using namespace sessiond;

TEST_CASE("control bytes cannot forge or split a log line", "[log]") {
  CHECK(EscapeForLog("GET /x\nsessiond: 200 GET /admin") == "GET /x\\nsessiond: 200 GET /admin");
  CHECK(EscapeForLog(std::string("a\r\0b\x1b[31m\x7f", 10)) == "a\\r\\x00b\\x1b[31m\\x7f");
  CHECK(EscapeForLog("tab\there \\ back") == "tab\\there \\\\ back");
  CHECK(EscapeForLog("caf\xc3\xa9 stays") == "caf\xc3\xa9 stays");
}

// A terminal or log viewer acts on more than ASCII controls: C1 controls
// (U+0085 is a line break to some tools), the Unicode line and paragraph
// separators, and the bidirectional overrides that make a line read
// differently from what it holds. Bytes that are not UTF-8 reach no viewer
// as they are either.
TEST_CASE("Unicode controls and bytes that are not UTF-8 are escaped too", "[log]") {
  CHECK(EscapeForLog("a\xc2\x85" "b") == "a\\u{0085}b");                 // NEL
  CHECK(EscapeForLog("a\xc2\x9b" "31m") == "a\\u{009b}31m");              // CSI
  CHECK(EscapeForLog("x\xe2\x80\xa8y\xe2\x80\xa9z") == "x\\u{2028}y\\u{2029}z");
  CHECK(EscapeForLog("user \xe2\x80\xae" "nimda") == "user \\u{202e}nimda");  // RLO
  CHECK(EscapeForLog("\xe2\x81\xa6" "x\xe2\x81\xa9") == "\\u{2066}x\\u{2069}");
  CHECK(EscapeForLog("\xef\xbb\xbf" "bom") == "\\u{feff}bom");
  // Not UTF-8: a lone continuation byte, a truncated sequence, an overlong
  // encoding, a surrogate, past U+10FFFF.
  CHECK(EscapeForLog("a\x80z") == "a\\x80z");
  CHECK(EscapeForLog("a\xe2\x82") == "a\\xe2\\x82");
  CHECK(EscapeForLog("\xc0\xaf") == "\\xc0\\xaf");
  CHECK(EscapeForLog("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(EscapeForLog("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  // Printable text of every length of sequence stays as it is.
  CHECK(EscapeForLog("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

// stderr a pipe nobody reads (a stuck journal, a paused supervisor): a caller
// of LogLine is not held up, what waits is bounded, and once the log is read
// again the lines come whole and in order, then how many were dropped.
TEST_CASE("a log nobody reads holds up no caller, and says what it dropped", "[log]") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  int saved = ::dup(2);
  REQUIRE(saved >= 0);
  REQUIRE(::dup2(p[1], 2) == 2);
  ::close(p[1]);
  // Far more than the pipe and the waiting lines hold (40000 x 80 bytes).
  const int lines = 40000;
  auto logging = std::async(std::launch::async, [] {
    for (int i = 0; i < lines; ++i) LogLine("line " + std::to_string(i) + " " + std::string(64, 'x'));
  });
  // A hang guard, not a timing: the old behaviour never returns until read.
  bool returned = logging.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  // Now read it all: until the count of dropped lines, or nothing more comes
  // and the logging thread is done.
  std::string got;
  char buf[65536];
  for (;;) {
    pollfd pfd{p[0], POLLIN, 0};
    if (::poll(&pfd, 1, 2000) <= 0) {
      if (logging.wait_for(std::chrono::seconds(0)) == std::future_status::ready) break;
      continue;
    }
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    if (got.find("log lines dropped") != std::string::npos && got.back() == '\n') break;
  }
  logging.wait();
  REQUIRE(::dup2(saved, 2) == 2);
  ::close(saved);
  ::close(p[0]);
  CHECK(returned);
  // Whole lines, numbered in order from 0, then the notice.
  std::size_t pos = 0;
  int next = 0;
  std::string notice;
  while (pos < got.size()) {
    std::size_t end = got.find('\n', pos);
    REQUIRE(end != std::string::npos);
    std::string line = got.substr(pos, end - pos);
    pos = end + 1;
    if (line.find("log lines dropped") != std::string::npos) {
      notice = line;
      break;
    }
    REQUIRE(line == "sessiond: line " + std::to_string(next) + " " + std::string(64, 'x'));
    ++next;
  }
  CHECK(next > 0);
  CHECK(next < lines);
  CHECK(notice == "sessiond: " + std::to_string(lines - next) + " log lines dropped: the log was not read");
}

// A disk that fills up under the log (here a file size limit, which the
// kernel enforces the same way: a write cut short, then an error): no line
// is ever torn, every line that could not be written is counted, and a line
// says how many once the log can be written again.
TEST_CASE("a log file that cannot grow loses whole lines, counts them, and says so once it can", "[log]") {
  char dir[] = "/tmp/sessiond-log-test.XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/log";
  int file = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(file >= 0);
  int saved = ::dup(2);
  REQUIRE(saved >= 0);
  REQUIRE(::dup2(file, 2) == 2);
  ::close(file);
  // Past the limit a write fails with EFBIG (and SIGXFSZ, which would end
  // the process).
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit small = old;
  small.rlim_cur = 4050;  // room for 40 lines of 100 bytes, half the 41st, and no notice
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  auto line = [](int i) {
    std::string n = std::to_string(i);
    return "line " + std::string(3 - n.size(), '0') + n + " " + std::string(80, 'x');  // 100 bytes logged
  };
  for (int i = 0; i < 100; ++i) LogLine(line(i));
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
  LogLine("the disk has room again");
  REQUIRE(::dup2(saved, 2) == 2);
  ::close(saved);
  ::signal(SIGXFSZ, old_handler);

  std::string got;
  {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
  }
  ::unlink(path.c_str());
  ::rmdir(dir);
  std::string want;
  for (int i = 0; i < 40; ++i) want += "sessiond: " + line(i) + "\n";
  want += "sessiond: 60 log lines dropped: the log could not be written (File too large)\n";
  want += "sessiond: the disk has room again\n";
  CHECK(got == want);
}

TEST_CASE("a password is masked in every form it is spelt in", "[log][redact]") {
  CHECK(Redact("/var/lib/sessiond/sessions.db") == "/var/lib/sessiond/sessions.db");
  CHECK(Redact("postgresql://sessiond:s3cr%40t@db.example:5432/sessions") ==
        "postgresql://sessiond:********@db.example:5432/sessions");
  CHECK(Redact("postgres://sessiond@db.example/sessions") == "postgres://sessiond@db.example/sessions");
  CHECK(Redact("postgresql://a:b@h1:1,h2:2/db?sslmode=require&password=x%26y&user=z") ==
        "postgresql://a:********@h1:1,h2:2/db?sslmode=require&password=********&user=z");
  CHECK(Redact("postgresql:///sessions?password=secret") == "postgresql:///sessions?password=********");
  CHECK(Redact("postgresql:///sessions?PassWord=secret#x") == "postgresql:///sessions?PassWord=********#x");
  CHECK(Redact("postgresql://h/db#frag:x@y") == "postgresql://h/db#frag:x@y");  // no user info
  // libpq takes everything up to the @ before the path as user info: a # or
  // ? there is part of the password, not the start of a fragment or query.
  CHECK(Redact("postgresql://u:pa#ss@h/db") == "postgresql://u:********@h/db");
  CHECK(Redact("postgresql://u:pa?ss@h:5432") == "postgresql://u:********@h:5432");
  CHECK(Redact("postgresql://u:p\"q@h/db") == "postgresql://u:********@h/db");
  CHECK(Redact("host=db password='se cr\\'et' dbname=s") == "host=db password=******** dbname=s");
  CHECK(Redact("host=db password = a&b#c dbname=s") == "host=db password = ******** dbname=s");
  CHECK(Redact("password=secret") == "password=********");
  CHECK(Redact("PGPASSWORD=secret psql") == "PGPASSWORD=******** psql");
  CHECK(Redact("DB_PASSWORD=\"a b\" next") == "DB_PASSWORD=******** next");
  CHECK(Redact("/srv/mypassword=1/sessions.db") == "/srv/mypassword=1/sessions.db");
  // In free text: a message quoting a URI, a settings line of quoted values.
  CHECK(Redact("--db \"postgresql://u:p@h/d\": cannot connect") == "--db \"postgresql://u:********@h/d\": cannot connect");
  CHECK(Redact("see https://u:pw@example.com/x and ftp://a:b@c") ==
        "see https://u:********@example.com/x and ftp://a:********@c");
  // Masking what is masked changes nothing.
  for (std::string s : {"db=\"host=x password=********\" workers=4", "db-password = \"********\"",
                        "postgresql://u:********@h/d?password=********"})
    CHECK(Redact(s) == s);
}

TEST_CASE("a registered secret is masked wherever it appears, in every log line", "[log][redact]") {
  const std::string secret = "Zq9-registered-" + std::to_string(::getpid());
  CHECK(Redact("said " + secret + ".") == "said " + secret + ".");
  AddSecret(secret);
  AddSecret("");  // nothing
  CHECK(Redact("said " + secret + ", twice: " + secret) == "said ********, twice: ********");
  CHECK(Redact("x") == "x");

  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  int saved = ::dup(2);
  REQUIRE(::dup2(p[1], 2) == 2);
  ::close(p[1]);
  LogLine("FATAL: password authentication failed: \"" + secret + "\"");
  LogLine("postgresql://sessiond:other@db/s?password=third");
  REQUIRE(::dup2(saved, 2) == 2);  // the last writer: the pipe ends
  ::close(saved);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  CHECK(got ==
        "sessiond: FATAL: password authentication failed: \"********\"\n"
        "sessiond: postgresql://sessiond:********@db/s?password=********\n");
}

TEST_CASE("the passwords a database setting spells, as written and decoded", "[log][redact]") {
  using V = std::vector<std::string>;
  CHECK(PasswordsIn("/var/lib/sessiond/sessions.db") == V{});
  CHECK(PasswordsIn("postgresql://u:s3cr%40t@h/db") == V{"s3cr%40t", "s3cr@t"});
  CHECK(PasswordsIn("postgresql://u@h/db?password=a%26b") == V{"a%26b", "a&b"});
  CHECK(PasswordsIn("host=h password='se cr\\'et'") == V{"'se cr\\'et'", "se cr'et"});
  CHECK(PasswordsIn("postgresql://u:p%zz@h/db") == V{"p%zz"});  // malformed: as written
  CHECK(PasswordsIn("postgresql://u:pa#ss@h/db") == V{"pa#ss"});
}

TEST_CASE("a password on the command line is hidden from ps", "[log][redact]") {
  // As the kernel lays out a command line: one string after the other.
  auto layout = [](const std::vector<std::string>& args, std::vector<char>& area, std::vector<char*>& argv) {
    area.clear();
    for (const std::string& a : args) area.insert(area.end(), a.c_str(), a.c_str() + a.size() + 1);
    argv.clear();
    for (std::size_t at = 0; at < area.size(); at += std::strlen(&area[at]) + 1) argv.push_back(&area[at]);
  };
  auto shown = [](const std::vector<char>& area) {  // as ps shows it
    std::string s(area.begin(), area.end());
    std::replace(s.begin(), s.end(), '\0', ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  };
  std::vector<char> area;
  std::vector<char*> argv;
  layout({"sessiond", "serve", "--db", "postgresql://u:a-long-password@h/db", "--pages", "/p"}, area, argv);
  REQUIRE(HideSecretsInArgv(static_cast<int>(argv.size()), argv.data()));
  CHECK(shown(area) == "sessiond serve --db postgresql://u:********@h/db --pages /p");
  CHECK(std::string(argv[3]) == "postgresql://u:********@h/db");
  CHECK(std::string(argv[5]) == "/p");
  // A password shorter than the mask: overwritten where it is.
  layout({"sessiond", "list", "--db=postgresql://u@h/db?password=pw"}, area, argv);
  REQUIRE(HideSecretsInArgv(static_cast<int>(argv.size()), argv.data()));
  CHECK(shown(area) == "sessiond list --db=postgresql://u@h/db?password=**");
  layout({"sessiond", "serve", "--db", "/var/lib/sessiond/sessions.db"}, area, argv);
  CHECK_FALSE(HideSecretsInArgv(static_cast<int>(argv.size()), argv.data()));
  CHECK(shown(area) == "sessiond serve --db /var/lib/sessiond/sessions.db");
}

// A log file has no journal to stamp its lines: each carries the time it was
// logged, in UTC, ISO 8601 to the millisecond. In a child process, so this
// process's log stays on stderr, unstamped, for the other cases.
TEST_CASE("lines in a log file start with the time in UTC", "[log]") {
  char dir[] = "/tmp/sessiond-log-test.XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/log";
  const std::time_t before = std::time(nullptr);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    LogToFile(path);
    LogLine("stamped");
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  const std::time_t after = std::time(nullptr);
  REQUIRE(WIFEXITED(status));
  char buf[256] = {};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  ::unlink(path.c_str());
  ::rmdir(dir);
  const std::string line(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  INFO(line);
  REQUIRE(line.size() == 24 + 19);
  CHECK(line.substr(24) == " sessiond: stamped\n");
  // 2026-12-07T20:35:54.123Z: the fields in place, and a time between the
  // moments before and after the child wrote it.
  std::tm tm{};
  const char* end = ::strptime(line.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  REQUIRE(end == line.c_str() + 19);
  CHECK(line[19] == '.');
  CHECK(std::all_of(line.begin() + 20, line.begin() + 23,
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }));
  CHECK(line[23] == 'Z');
  const std::time_t logged = ::timegm(&tm);
  CHECK(logged >= before);
  CHECK(logged <= after);
}
