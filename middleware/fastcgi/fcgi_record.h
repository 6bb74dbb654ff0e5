// FastCGI records (the FastCGI 1.0 specification), on libfcgi's <fastcgi.h>
// definitions: splitting a byte stream into records, the name-value pairs of
// FCGI_PARAMS, and the records sessiond sends. No I/O and no state beyond the
// arguments: bytes in, records out. <fastcgi.h> is included only in
// fcgi_record.cc.
//
// Thread-safety: plain functions on the caller's data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond::fcgi {

// Record types (FCGI_BEGIN_REQUEST ... FCGI_UNKNOWN_TYPE).
enum Type : std::uint8_t {
  kBeginRequest = 1,
  kAbortRequest = 2,
  kEndRequest = 3,
  kParams = 4,
  kStdin = 5,
  kStdout = 6,
  kStderr = 7,
  kData = 8,
  kGetValues = 9,
  kGetValuesResult = 10,
  kUnknownType = 11,
};

// FCGI_BeginRequestBody's role and flag; FCGI_EndRequestBody's protocol status.
inline constexpr std::uint16_t kResponder = 1;
inline constexpr std::uint8_t kKeepConn = 1;
enum ProtocolStatus : std::uint8_t { kRequestComplete = 0, kCantMpxConn = 1, kOverloaded = 2, kUnknownRole = 3 };

// Largest content of one record.
inline constexpr std::size_t kMaxContent = 0xffff;

struct Record {
  std::uint8_t type = 0;
  std::uint16_t request_id = 0;
  std::string_view content;  // points into the parsed bytes; padding removed
};

enum class Parse { kRecord, kNeedMore, kBad };

// Reads the record at the start of `in`. kRecord: `out` is set and `used`
// is the number of bytes it took (header, content, padding). kNeedMore: `in`
// holds less than one whole record. kBad: not a FastCGI 1.0 record.
Parse ParseRecord(std::string_view in, Record& out, std::size_t& used);

struct BeginRequest {
  std::uint16_t role = 0;
  bool keep_conn = false;
};
// The body of FCGI_BEGIN_REQUEST; false when it is not 8 bytes.
bool ParseBeginRequest(std::string_view content, BeginRequest& out);

// Name-value pairs (FCGI_PARAMS, FCGI_GET_VALUES): appends each as
// "NAME=value" to `out`. False when a length runs past the end of `pairs`.
// A name containing '=' or NUL is dropped (it could not be a CGI variable
// and would be ambiguous in "NAME=value").
bool ParseNameValues(std::string_view pairs, std::vector<std::string>& out);

// Appends one name-value pair, in the FastCGI length encoding.
void AppendNameValue(std::string& out, std::string_view name, std::string_view value);

// The bytes AppendNameValue appends for a name and a value of these lengths.
std::size_t NameValueSize(std::size_t name_length, std::size_t value_length);

// Appends records of `type` carrying `content`, split into records of at most
// kMaxContent bytes; an empty `content` appends one empty record (the end of a
// stream).
void AppendRecords(std::string& out, std::uint8_t type, std::uint16_t request_id, std::string_view content);

// Appends an FCGI_END_REQUEST record.
void AppendEndRequest(std::string& out, std::uint16_t request_id, std::uint32_t app_status,
                      ProtocolStatus status);

// Appends an FCGI_BEGIN_REQUEST record (for sessiond as a FastCGI client).
void AppendBeginRequest(std::string& out, std::uint16_t request_id, std::uint16_t role, bool keep_conn);

// Appends an FCGI_UNKNOWN_TYPE record answering a record of `type`.
void AppendUnknownType(std::string& out, std::uint8_t type);

// Sessiond as a FastCGI client: one record of an application's response.
struct AppRecord {
  enum class Kind { kStdout, kStderr, kEnd } kind = Kind::kStdout;
  std::string_view content;            // kStdout, kStderr: the stream's bytes (empty: its end)
  std::uint32_t app_status = 0;        // kEnd
  std::uint8_t protocol_status = 0;    // kEnd: kRequestComplete, or why the app refused
};

// Reads the record at the start of `in`, from an application answering
// request `request_id`. kRecord: `out` and `used` are set. kNeedMore: `in`
// holds less than one whole record. kBad, with `why` set: not a FastCGI 1.0
// record, a record of another request, an FCGI_END_REQUEST whose body is not
// 8 bytes, or a type an application does not send in answer to a request
// (FCGI_UNKNOWN_TYPE included: sessiond sends only types every application
// knows, so one that answers so is not a FastCGI responder).
Parse ParseAppRecord(std::string_view in, std::uint16_t request_id, AppRecord& out, std::size_t& used,
                     std::string& why);

}  // namespace sessiond::fcgi
