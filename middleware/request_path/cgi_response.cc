#include "middleware/request_path/cgi_response.h"

#include <strings.h>

#include "middleware/base/percent.h"

namespace sessiond {
namespace {

bool IsTokenChar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool Is(std::string_view name, const char* expected) {
  return name.size() == std::char_traits<char>::length(expected) &&
         strncasecmp(name.data(), expected, name.size()) == 0;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a header was a session header: No (pass it on), Yes (taken into
// the change set), Bad (a session header the page got wrong), NotJson (an
// X-Session-Set-Json whose value is not JSON).
enum class Taken { No, Yes, Bad, NotJson };

// JSON text without the whitespace around it (RFC 8259 allows it there):
// SESSION_VAR_<key> of ` 3 ` is then `3`, as a counter in sh expects.
std::string TrimJson(std::string text) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::size_t end = text.size();
  while (end > 0 && ws(text[end - 1])) --end;
  std::size_t start = 0;
  while (start < end && ws(text[start])) ++start;
  return text.substr(start, end - start);
}

Taken TakeSessionHeader(std::string_view name, std::string_view value, ChangeSet& cs) {
  auto flag = [&](bool& target) {
    if (value == "1") target = true;
    else if (value != "0") return Taken::Bad;
    return Taken::Yes;
  };
  const bool set_json = Is(name, "X-Session-Set-Json");
  if (set_json || Is(name, "X-Session-Set")) {
    std::size_t eq = value.find('=');
    if (eq == std::string_view::npos) return Taken::Bad;
    auto key = PercentDecode(value.substr(0, eq));
    auto val = PercentDecode(value.substr(eq + 1));
    if (!key || !val || key->empty()) return Taken::Bad;
    if (!set_json) {
      cs.changes.push_back({Change::Kind::Set, std::move(*key), std::move(*val), {}});
      return Taken::Yes;
    }
    std::string json = TrimJson(std::move(*val));
    if (!IsJsonText(json)) return Taken::NotJson;
    cs.changes.push_back({Change::Kind::Set, std::move(*key), std::move(json), {}, ItemType::Json});
    return Taken::Yes;
  }
  if (Is(name, "X-Session-Remove")) {
    auto key = PercentDecode(value);
    if (!key || key->empty()) return Taken::Bad;
    cs.changes.push_back({Change::Kind::Remove, std::move(*key), {}, {}});
    return Taken::Yes;
  }
  if (Is(name, "X-Session-Clear")) {
    bool clear = false;
    if (flag(clear) == Taken::Bad) return Taken::Bad;
    if (clear) cs.changes.push_back({Change::Kind::Clear, {}, {}, {}});
    return Taken::Yes;
  }
  if (Is(name, "X-Replace-Session")) {
    auto items = DecodeItems(value);
    if (!items) return Taken::Bad;
    cs.changes.push_back({Change::Kind::Replace, {}, {}, std::move(*items)});
    return Taken::Yes;
  }
  if (Is(name, "X-Session-Abandon")) return flag(cs.abandon);
  if (Is(name, "X-Session-Regenerate")) return flag(cs.regenerate);
  return Taken::No;
}

}  // namespace

std::variant<CgiResponse, std::string> ParseCgiResponse(std::string_view output) {
  CgiResponse r;
  bool has_status = false, has_location = false, ended = false;
  std::size_t pos = 0, lines = 0;
  while (pos < output.size()) {
    std::size_t nl = output.find('\n', pos);
    if (nl == std::string_view::npos) break;
    std::string_view line = output.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      ended = true;
      break;
    }
    ++lines;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return "page output line " + std::to_string(lines) + " is not a header";
    std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (!IsTokenChar(c)) return "page output line " + std::to_string(lines) + " is not a header";
    std::string_view value = TrimSpace(line.substr(colon + 1));
    // A control byte would reach the web server as a broken header (nginx
    // answers 502) or split one header into two: the page failed.
    for (char ch : value) {
      auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        return "page output line " + std::to_string(lines) + " (" + std::string(name) + ") has a control byte";
    }
    if (Is(name, "Status")) {
      // A final status, 200 to 599: a 1xx passed on as the answer would end
      // the response before its body, and the rest of the output would reach
      // the client as the start of the next response on its connection.
      if (has_status) return "page sent a second Status";
      if (value.size() < 3 || value[0] < '2' || value[0] > '5' || value[1] < '0' || value[1] > '9' ||
          value[2] < '0' || value[2] > '9' || (value.size() > 3 && value[3] != ' '))
        return "page sent a bad Status (a final status, 200-599, is needed): " + std::string(value.substr(0, 40));
      r.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
      r.reason = std::string(TrimSpace(value.substr(3)));
      has_status = true;
      continue;
    }
    switch (TakeSessionHeader(name, value, r.session)) {
      case Taken::Yes: continue;
      case Taken::Bad: return "page sent a malformed " + std::string(name) + " header";
      case Taken::NotJson:
        return "page sent an " + std::string(name) + " header whose value is not JSON text (RFC 8259)";
      case Taken::No: break;
    }
    if (Is(name, "Location")) has_location = true;
    r.headers.emplace_back(std::string(name), std::string(value));
  }
  if (!ended) return "page output has no blank line ending its headers";
  if (lines == 0) return "page output has no headers";
  if (has_location && !has_status) r.status = 302;
  r.body = output.substr(pos);
  r.body_offset = pos;
  return r;
}

}  // namespace sessiond
