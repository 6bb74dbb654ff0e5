#include "middleware/server/options.h"

#include <cerrno>
#include <cstring>

namespace sessiond {

void ThrowSystemError(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

}  // namespace sessiond
