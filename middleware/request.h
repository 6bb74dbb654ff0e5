// The seam between the request path and the web server protocol: one request
// as the handler sees it. The FastCGI adapter implements it on libfcgi; tests
// implement it in memory.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace sessiond {

class Request {
 public:
  virtual ~Request() = default;

  // The CGI meta-variables the web server sent, each as "NAME=value".
  virtual std::vector<std::string_view> Environment() const = 0;
  // Reads up to `size` bytes of the request body into `buf`; 0 at its end.
  virtual std::size_t ReadBody(char* buf, std::size_t size) = 0;
  // Sends bytes of the response (CGI-style head, blank line, body).
  virtual void Write(std::string_view bytes) = 0;

  // The value of variable `name`, or nullopt when it was not sent.
  std::optional<std::string_view> Param(std::string_view name) const {
    for (std::string_view kv : Environment())
      if (kv.size() > name.size() && kv[name.size()] == '=' && kv.substr(0, name.size()) == name)
        return kv.substr(name.size() + 1);
    return std::nullopt;
  }
};

}  // namespace sessiond
