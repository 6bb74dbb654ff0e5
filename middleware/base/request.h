// The seam between the request path and the web server protocol: one request
// as the handler sees it, received whole before the handler runs. The
// FastCGI server implements it; tests implement it in memory.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "middleware/base/spill_buffer.h"

namespace sessiond {

class Request {
 public:
  virtual ~Request() = default;

  // The CGI meta-variables the web server sent, each as "NAME=value".
  virtual const std::vector<std::string_view>& Environment() const = 0;
  // The whole request body, within the server's body limit.
  virtual const SpillBuffer& Body() const = 0;
  // Sends bytes of the response (CGI-style head, blank line, body). A web
  // server that is gone, or does not take the bytes in time, gets nothing
  // more; the caller is not told (the session was committed already).
  virtual void Write(std::string_view bytes) = 0;

  // The value of variable `name`, or nullopt when it was not sent. When it was
  // sent twice, the first one.
  std::optional<std::string_view> Param(std::string_view name) const {
    for (std::string_view kv : Environment())
      if (kv.size() > name.size() && kv[name.size()] == '=' && kv.substr(0, name.size()) == name)
        return kv.substr(name.size() + 1);
    return std::nullopt;
  }
};

}  // namespace sessiond
