#include "middleware/fastcgi/fcgi_record.h"

#include <fastcgi.h>

#include <algorithm>

namespace sessiond::fcgi {
namespace {

static_assert(FCGI_HEADER_LEN == 8 && FCGI_VERSION_1 == 1 && FCGI_MAX_LENGTH == kMaxContent);
static_assert(kBeginRequest == FCGI_BEGIN_REQUEST && kUnknownType == FCGI_UNKNOWN_TYPE &&
              kStdout == FCGI_STDOUT && kParams == FCGI_PARAMS && kGetValues == FCGI_GET_VALUES);
static_assert(kResponder == FCGI_RESPONDER && kKeepConn == FCGI_KEEP_CONN);
static_assert(kRequestComplete == FCGI_REQUEST_COMPLETE && kUnknownRole == FCGI_UNKNOWN_ROLE &&
              kCantMpxConn == FCGI_CANT_MPX_CONN && kOverloaded == FCGI_OVERLOADED);

std::uint8_t Byte(std::string_view s, std::size_t i) { return static_cast<std::uint8_t>(s[i]); }

void AppendHeader(std::string& out, std::uint8_t type, std::uint16_t id, std::size_t length) {
  FCGI_Header h{};
  h.version = FCGI_VERSION_1;
  h.type = type;
  h.requestIdB1 = static_cast<unsigned char>(id >> 8);
  h.requestIdB0 = static_cast<unsigned char>(id & 0xff);
  h.contentLengthB1 = static_cast<unsigned char>(length >> 8);
  h.contentLengthB0 = static_cast<unsigned char>(length & 0xff);
  out.append(reinterpret_cast<const char*>(&h), sizeof h);
}

// A name-value length: one byte below 128, else four with the top bit set.
bool ReadLength(std::string_view s, std::size_t& pos, std::size_t& length) {
  if (pos >= s.size()) return false;
  if (Byte(s, pos) < 0x80) {
    length = Byte(s, pos++);
    return true;
  }
  if (pos + 4 > s.size()) return false;
  length = (static_cast<std::size_t>(Byte(s, pos) & 0x7f) << 24) | (static_cast<std::size_t>(Byte(s, pos + 1)) << 16) |
           (static_cast<std::size_t>(Byte(s, pos + 2)) << 8) | Byte(s, pos + 3);
  pos += 4;
  return true;
}

void AppendLength(std::string& out, std::size_t n) {
  if (n < 0x80) {
    out += static_cast<char>(n);
    return;
  }
  out += static_cast<char>(((n >> 24) & 0x7f) | 0x80);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
}

}  // namespace

Parse ParseRecord(std::string_view in, Record& out, std::size_t& used) {
  if (in.size() < FCGI_HEADER_LEN) return Parse::kNeedMore;
  if (Byte(in, 0) != FCGI_VERSION_1) return Parse::kBad;
  std::size_t length = (static_cast<std::size_t>(Byte(in, 4)) << 8) | Byte(in, 5);
  std::size_t padding = Byte(in, 6);
  if (in.size() < FCGI_HEADER_LEN + length + padding) return Parse::kNeedMore;
  out.type = Byte(in, 1);
  out.request_id = static_cast<std::uint16_t>((Byte(in, 2) << 8) | Byte(in, 3));
  out.content = in.substr(FCGI_HEADER_LEN, length);
  used = FCGI_HEADER_LEN + length + padding;
  return Parse::kRecord;
}

bool ParseBeginRequest(std::string_view content, BeginRequest& out) {
  if (content.size() != sizeof(FCGI_BeginRequestBody)) return false;
  out.role = static_cast<std::uint16_t>((Byte(content, 0) << 8) | Byte(content, 1));
  out.keep_conn = (Byte(content, 2) & FCGI_KEEP_CONN) != 0;
  return true;
}

bool ParseNameValues(std::string_view pairs, std::vector<std::string>& out) {
  std::size_t pos = 0;
  while (pos < pairs.size()) {
    std::size_t name_length, value_length;
    if (!ReadLength(pairs, pos, name_length) || !ReadLength(pairs, pos, value_length)) return false;
    if (name_length > pairs.size() - pos || value_length > pairs.size() - pos - name_length) return false;
    std::string_view name = pairs.substr(pos, name_length);
    std::string_view value = pairs.substr(pos + name_length, value_length);
    pos += name_length + value_length;
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string_view::npos) continue;
    std::string kv;
    kv.reserve(name.size() + 1 + value.size());
    kv.append(name).append(1, '=').append(value);
    out.push_back(std::move(kv));
  }
  return true;
}

void AppendNameValue(std::string& out, std::string_view name, std::string_view value) {
  AppendLength(out, name.size());
  AppendLength(out, value.size());
  out.append(name);
  out.append(value);
}

std::size_t NameValueSize(std::size_t name_length, std::size_t value_length) {
  return (name_length < 0x80 ? 1 : 4) + (value_length < 0x80 ? 1 : 4) + name_length + value_length;
}

void AppendRecords(std::string& out, std::uint8_t type, std::uint16_t request_id, std::string_view content) {
  do {
    std::size_t n = std::min(content.size(), kMaxContent);
    AppendHeader(out, type, request_id, n);
    out.append(content.substr(0, n));
    content.remove_prefix(n);
  } while (!content.empty());
}

void AppendEndRequest(std::string& out, std::uint16_t request_id, std::uint32_t app_status,
                      ProtocolStatus status) {
  FCGI_EndRequestBody body{};
  body.appStatusB3 = static_cast<unsigned char>(app_status >> 24);
  body.appStatusB2 = static_cast<unsigned char>(app_status >> 16);
  body.appStatusB1 = static_cast<unsigned char>(app_status >> 8);
  body.appStatusB0 = static_cast<unsigned char>(app_status);
  body.protocolStatus = status;
  AppendHeader(out, FCGI_END_REQUEST, request_id, sizeof body);
  out.append(reinterpret_cast<const char*>(&body), sizeof body);
}

void AppendBeginRequest(std::string& out, std::uint16_t request_id, std::uint16_t role, bool keep_conn) {
  FCGI_BeginRequestBody body{};
  body.roleB1 = static_cast<unsigned char>(role >> 8);
  body.roleB0 = static_cast<unsigned char>(role & 0xff);
  body.flags = keep_conn ? FCGI_KEEP_CONN : 0;
  AppendHeader(out, FCGI_BEGIN_REQUEST, request_id, sizeof body);
  out.append(reinterpret_cast<const char*>(&body), sizeof body);
}

void AppendUnknownType(std::string& out, std::uint8_t type) {
  FCGI_UnknownTypeBody body{};
  body.type = type;
  AppendHeader(out, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, sizeof body);
  out.append(reinterpret_cast<const char*>(&body), sizeof body);
}

Parse ParseAppRecord(std::string_view in, std::uint16_t request_id, AppRecord& out, std::size_t& used,
                     std::string& why) {
  Record record;
  Parse parsed = ParseRecord(in, record, used);
  if (parsed == Parse::kBad) why = "not a FastCGI 1.0 record (version byte " + std::to_string(Byte(in, 0)) + ")";
  if (parsed != Parse::kRecord) return parsed;
  if (record.request_id != request_id) {
    why = "a record of type " + std::to_string(record.type) + " for request " + std::to_string(record.request_id) +
          ", not " + std::to_string(request_id);
    return Parse::kBad;
  }
  out = AppRecord{};
  switch (record.type) {
    case FCGI_STDOUT:
    case FCGI_STDERR:
      out.kind = record.type == FCGI_STDOUT ? AppRecord::Kind::kStdout : AppRecord::Kind::kStderr;
      out.content = record.content;
      return Parse::kRecord;
    case FCGI_END_REQUEST: {
      if (record.content.size() != sizeof(FCGI_EndRequestBody)) {
        why = "an FCGI_END_REQUEST of " + std::to_string(record.content.size()) + " bytes, not 8";
        return Parse::kBad;
      }
      const std::string_view c = record.content;
      out.kind = AppRecord::Kind::kEnd;
      out.app_status = (static_cast<std::uint32_t>(Byte(c, 0)) << 24) | (static_cast<std::uint32_t>(Byte(c, 1)) << 16) |
                       (static_cast<std::uint32_t>(Byte(c, 2)) << 8) | Byte(c, 3);
      out.protocol_status = Byte(c, 4);
      return Parse::kRecord;
    }
    default:
      why = "a record of type " + std::to_string(record.type) + ", which an application does not send";
      return Parse::kBad;
  }
}

}  // namespace sessiond::fcgi
