#include "middleware/server/systemd.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace sessiond {

static_assert(kSystemdFirstFd == SD_LISTEN_FDS_START);

int SystemdSockets() {
  int n = ::sd_listen_fds(1);
  if (n < 0) throw std::runtime_error(std::string("LISTEN_FDS from systemd: ") + std::strerror(-n));
  return n;
}

// sd_notify() does nothing without NOTIFY_SOCKET (not run by systemd, or not
// Type=notify); a failure to send is systemd's to notice (it times out).
void NotifyReady() { ::sd_notify(0, "READY=1"); }
void NotifyStopping() { ::sd_notify(0, "STOPPING=1"); }

}  // namespace sessiond
