// A page's output as a CGI response (RFC 3875 section 6): header lines, a
// blank line, the body; and the session changes its X-Session-* headers ask for.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "store/session.h"

namespace sessiond {

using Header = std::pair<std::string, std::string>;

struct CgiResponse {
  int status = 200;
  std::string reason;           // from Status:, or empty for the standard phrase
  std::vector<Header> headers;  // to pass on, in order; Status and session headers removed
  std::string_view body;        // points into the parsed output
  std::size_t body_offset = 0;  // where the body starts in the output
  ChangeSet session;            // what X-Session-* and X-Replace-Session ask for
};

// Parses `output` (at least the page's whole header block). Returns the
// response, or a message saying why the output is not a CGI response (no
// blank line after the headers, a line that is not a header, a header value
// with a control byte such as a bare CR or a NUL, a Status that is not one
// final status 200-599, a malformed session header, or an X-Session-Set-Json
// whose value is not JSON text): the page failed. Lines may end in LF or
// CRLF. Location without Status means 302. X-Session-Set sets a string item,
// X-Session-Set-Json a JSON item (its text without the whitespace around it).
std::variant<CgiResponse, std::string> ParseCgiResponse(std::string_view output);

}  // namespace sessiond
