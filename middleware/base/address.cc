#include "middleware/base/address.h"

#include <sys/un.h>

namespace sessiond {

std::optional<Address> ParseAddress(std::string_view text, std::string& why) {
  Address a;
  if (text.substr(0, 5) == "unix:") {
    a.is_unix = true;
    a.path = text.substr(5);
    constexpr std::size_t kMax = sizeof(sockaddr_un{}.sun_path) - 1;  // and its NUL
    if (a.path.empty() || a.path.size() > kMax) {
      why = "a unix socket path of 1 to " + std::to_string(kMax) + " bytes";
      return std::nullopt;
    }
    return a;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    why = "not unix:PATH or HOST:PORT";
    return std::nullopt;
  }
  a.host = text.substr(0, colon);
  a.port = text.substr(colon + 1);
  // At most 5 digits, so the comparison below cannot overflow.
  if (a.port.empty() || a.port.size() > 5 || a.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(a.port) < 1 || std::stoi(a.port) > 65535) {
    why = "the port must be a number from 1 to 65535";
    return std::nullopt;
  }
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  if (a.host.empty()) a.host = "127.0.0.1";
  return a;
}

}  // namespace sessiond
