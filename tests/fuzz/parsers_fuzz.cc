// libFuzzer target for the parsers that see untrusted bytes: the Cookie
// header (from clients), percent-coding and session items, JSON text and
// CGI responses (from pages), FastCGI records and name-value pairs (from the web server),
// and an application's FastCGI response (sessiond as a client: STDOUT,
// STDERR, END_REQUEST, anything else). Each must return a value or an error
// for any input, never crash, and round-trip what it encodes.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "middleware/base/percent.h"
#include "middleware/fastcgi/fcgi_record.h"
#include "middleware/request_path/cgi_response.h"
#include "middleware/request_path/cookie.h"
#include "store/session_id.h"

using namespace sessiond;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto id = FindCookie(in, "sid")) (void)IsWellFormedId(*id);

  if (auto decoded = PercentDecode(in)) {
    if (PercentDecode(PercentEncode(*decoded)) != *decoded) std::abort();
  }
  if (auto items = DecodeItems(in)) {
    if (DecodeItems(EncodeItems(*items)) != *items) std::abort();
  }

  // JSON text: a verdict for any bytes (deep nesting included), and a JSON
  // item a CGI response sets is always JSON.
  (void)IsJsonText(in);
  auto parsed = ParseCgiResponse(in);
  if (auto* r = std::get_if<CgiResponse>(&parsed)) {
    if (r->status < 100 || r->status > 599) std::abort();
    if (r->body.size() > in.size()) std::abort();
    for (const Change& c : r->session.changes)
      if (c.type == ItemType::Json && !IsJsonText(c.value)) std::abort();
  }
  // A stream of records: each parse consumes at least a header and never
  // reads past the input; name-value pairs and begin bodies never crash.
  std::string_view stream = in;
  fcgi::Record record;
  std::size_t used = 0;
  while (fcgi::ParseRecord(stream, record, used) == fcgi::Parse::kRecord) {
    if (used < 8 || used > stream.size()) std::abort();
    std::vector<std::string> env;
    if (fcgi::ParseNameValues(record.content, env))
      for (const std::string& kv : env)
        if (kv.find('=') == 0 || kv.find('=') == std::string::npos) std::abort();
    fcgi::BeginRequest begin;
    (void)fcgi::ParseBeginRequest(record.content, begin);
    stream.remove_prefix(used);
  }
  // The same bytes as an application's answer to request 1: every record is
  // read or refused, the stream's bytes come from inside the input, and
  // nothing follows a refusal.
  std::string_view answer = in;
  fcgi::AppRecord app;
  std::string why;
  for (;;) {
    fcgi::Parse step = fcgi::ParseAppRecord(answer, 1, app, used, why);
    if (step == fcgi::Parse::kBad && why.empty()) std::abort();
    if (step != fcgi::Parse::kRecord) break;
    if (used < 8 || used > answer.size()) std::abort();
    if (app.content.data() && (app.content.data() < answer.data() ||
                               app.content.data() + app.content.size() > answer.data() + used))
      std::abort();
    if (app.kind == fcgi::AppRecord::Kind::kEnd) break;
    answer.remove_prefix(used);
  }
  return 0;
}
