#include "middleware/runners/runner.h"

#include <cstdio>
#include <random>
#include <set>

#include "middleware/base/percent.h"

namespace sessiond {
namespace {

bool IsIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

bool IsReserved(std::string_view name) {
  return name == "HTTP_PROXY" || name == "HTTP_SESSION" || name == "SESSIOND_APP" || name.substr(0, 8) == "SESSION_";
}

}  // namespace

const std::string& LoopToken() {
  static const std::string token = [] {
    std::random_device random;
    std::string t;
    for (int i = 0; i < 4; ++i) {
      char hex[9];
      std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(random()));
      t += hex;
    }
    return t;
  }();
  return token;
}

std::vector<std::string> CleanEnvironment(const std::vector<std::string_view>& environment) {
  std::vector<std::string> env;
  env.reserve(environment.size() + 8);
  std::set<std::string_view> seen;
  for (std::string_view kv : environment) {
    std::size_t eq = kv.find('=');
    std::string_view name = kv.substr(0, eq);
    if (eq == std::string_view::npos || !IsIdentifier(name) || IsReserved(name)) continue;
    // Every sessiond a request passed adds its loop token: all are kept, so
    // each of them can still recognise its own (the handler's CameBack).
    if (name == kLoopParam || seen.insert(name).second) env.emplace_back(kv);
  }
  return env;
}

std::string AppendSession(std::vector<std::string>& env, const Session* session, std::size_t max_variable,
                          bool off) {
  if (off) return {};
  static const Session kNone;
  const Session& s = session ? *session : kNone;
  std::string encoded = "HTTP_SESSION=" + EncodeItems(s.items);
  std::string left_out;
  if (encoded.size() <= max_variable) env.push_back(std::move(encoded));
  else left_out = encoded.substr(13);
  env.push_back("SESSION_ID=" + (session ? session->id : std::string()));
  env.push_back(session ? "SESSION_NEW=0" : "SESSION_NEW=1");
  for (const auto& [key, value] : s.items) {
    if (!IsIdentifier(key)) continue;
    if (value.find('\0') == std::string::npos && 13 + key.size() + value.size() <= max_variable)
      env.push_back("SESSION_VAR_" + key + '=' + value);
    if (s.json.count(key)) env.push_back("SESSION_TYPE_" + key + "=json");
  }
  // SESSION_TYPES is never longer than HTTP_SESSION (each of its keys is
  // there with a '=' and its value): it fits whenever HTTP_SESSION does.
  if (!s.json.empty()) {
    std::string types = "SESSION_TYPES=" + EncodeKeys(s.json);
    if (!left_out.empty()) left_out += '\n' + types.substr(14);
    if (types.size() <= max_variable) env.push_back(std::move(types));
  }
  return left_out;
}

}  // namespace sessiond
