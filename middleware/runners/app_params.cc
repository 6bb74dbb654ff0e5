#include "middleware/runners/app_params.h"

#include <limits>
#include <string_view>

#include "middleware/fastcgi/fcgi_record.h"
#include "middleware/runners/runner.h"

namespace sessiond {

// A chunk's pair (lengths of 1 + 4 bytes, "SESSION_TYPES_CHUNK_" and up to
// 20 digits, the chunk) always fits one record, with room left for small pairs.
static_assert(5 + 20 + 20 + kSessionChunkBytes <= fcgi::kMaxContent);

std::size_t AppendAppParams(std::string& out, std::uint16_t request_id, const std::vector<std::string>& env,
                            const Session* session, std::vector<std::string> added, bool session_off) {
  // AppendSession leaves nothing out by size here: which pairs fit is the
  // record's question, answered below with the exact encoded size.
  AppendSession(added, session, std::numeric_limits<std::size_t>::max(), session_off);
  std::string pairs;
  std::size_t left_out = 0;
  auto add = [&](std::string_view name, std::string_view value) {
    if (!pairs.empty() && pairs.size() + fcgi::NameValueSize(name.size(), value.size()) > fcgi::kMaxContent) {
      fcgi::AppendRecords(out, fcgi::kParams, request_id, pairs);
      pairs.clear();
    }
    fcgi::AppendNameValue(pairs, name, value);
  };
  for (const std::vector<std::string>* list : {&env, static_cast<const std::vector<std::string>*>(&added)}) {
    for (const std::string& kv : *list) {
      const std::size_t eq = kv.find('=');
      const std::string_view name = std::string_view(kv).substr(0, eq);
      const std::string_view value = std::string_view(kv).substr(eq + 1);
      if (fcgi::NameValueSize(name.size(), value.size()) <= fcgi::kMaxContent) {
        add(name, value);
      } else if (name == "HTTP_SESSION" || name == "SESSION_TYPES") {
        const std::string chunk = name == "HTTP_SESSION" ? "SESSION_CHUNK" : "SESSION_TYPES_CHUNK";
        const std::size_t n = (value.size() + kSessionChunkBytes - 1) / kSessionChunkBytes;
        add(chunk + 'S', std::to_string(n));
        for (std::size_t i = 0; i < n; ++i)
          add(chunk + '_' + std::to_string(i + 1), value.substr(i * kSessionChunkBytes, kSessionChunkBytes));
      } else {
        ++left_out;
      }
    }
  }
  if (!pairs.empty()) fcgi::AppendRecords(out, fcgi::kParams, request_id, pairs);
  fcgi::AppendRecords(out, fcgi::kParams, request_id, {});
  return left_out;
}

}  // namespace sessiond
