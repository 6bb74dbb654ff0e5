#include "middleware/base/http.h"

#include "log/log.h"

namespace sessiond {
namespace {

std::string_view Find(const std::vector<std::string_view>& env, std::string_view name) {
  for (std::string_view kv : env)
    if (kv.size() > name.size() && kv[name.size()] == '=' && kv.substr(0, name.size()) == name)
      return kv.substr(name.size() + 1);
  return {};
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 508: return "Loop Detected";
    default: return "Unknown";
  }
}

std::string ErrorResponse(int status, int retry_after) {
  std::string line = std::to_string(status) + ' ' + std::string(ReasonPhrase(status));
  // A 503 is for now (the workers all busy, busy app connections, the
  // database out of reach): a client or proxy that honours Retry-After comes
  // back a little later.
  return "Status: " + line + "\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n" +
         (status == 503 ? "Retry-After: " + std::to_string(retry_after) + "\r\n" : std::string()) + "\r\n" +
         line + '\n';
}

std::string Describe(const std::vector<std::string_view>& env) {
  std::string_view method = Find(env, "REQUEST_METHOD");
  // nginx's DOCUMENT_URI; Apache sends none, and its SCRIPT_NAME lacks the
  // PATH_INFO: there, the path of REQUEST_URI (as the client sent it).
  std::string_view uri = Find(env, "DOCUMENT_URI");
  if (uri.empty()) {
    std::string_view request_uri = Find(env, "REQUEST_URI");
    uri = request_uri.substr(0, request_uri.find('?'));
  }
  if (uri.empty()) uri = Find(env, "SCRIPT_NAME");
  return std::string(method.empty() ? "?" : method) + ' ' + std::string(uri.empty() ? "?" : uri);
}

void LogFailure(int status, const std::vector<std::string_view>& env, std::string_view why) {
  LogLine(std::to_string(status) + ' ' + Describe(env) + ": " + std::string(why));
}

}  // namespace sessiond
