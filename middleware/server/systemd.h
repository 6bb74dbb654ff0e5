// What sessiond takes from systemd and tells it: the listening socket of
// socket activation (LISTEN_FDS/LISTEN_PID, from fd 3 on) and the service's
// state for Type=notify (READY=1, STOPPING=1). The one file that includes
// <systemd/sd-daemon.h>. Without systemd (no LISTEN_FDS, no NOTIFY_SOCKET)
// each is a no-op.
#pragma once

namespace sessiond {

// The first descriptor socket activation passes (SD_LISTEN_FDS_START).
constexpr int kSystemdFirstFd = 3;

// How many descriptors socket activation passed to this process, from fd
// kSystemdFirstFd on: 0 when none were (no LISTEN_FDS, or LISTEN_PID names
// another process). Clears LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, and
// makes the passed descriptors close-on-exec, so nothing hands them on.
// Throws std::runtime_error when the variables are malformed.
int SystemdSockets();

// "READY=1": serving. "STOPPING=1": draining before exit.
void NotifyReady();
void NotifyStopping();

}  // namespace sessiond
