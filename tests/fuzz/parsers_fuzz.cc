// libFuzzer target for the parsers that see untrusted bytes: the Cookie
// header (from clients), percent-coding and session items, and CGI responses
// (from pages). Each must return a value or an error for any input, never
// crash, and round-trip what it encodes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "middleware/cgi_response.h"
#include "middleware/cookie.h"
#include "middleware/percent.h"
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

  auto parsed = ParseCgiResponse(in);
  if (auto* r = std::get_if<CgiResponse>(&parsed)) {
    if (r->status < 100 || r->status > 599) std::abort();
    if (r->body.size() > in.size()) std::abort();
  }
  return 0;
}
