#!/bin/bash
# sessiond under systemd's socket activation (LISTEN_FDS, LISTEN_PID), as
# systemd/sessiond.socket and sessiond.service run it, behind nginx:
# - systemd-socket-activate holds the socket and starts sessiond at the first
#   connection; the seed demo; the socket (sessiond's fd 3) never reaches a
#   page; a stopped sessiond leaves the socket it was given; two sockets, or
#   a descriptor that is no listening socket, are a settings error (exit 2).
# - A restart under load loses no request. A launcher holds the socket as
#   systemd does (tools/inherit_socket.py --listen-fds --notify --gate) and
#   runs sessiond #1, which says READY=1. While 4 clients send requests
#   through nginx in loops, #1 gets SIGTERM, says STOPPING=1 and exits 0;
#   with no sessiond running, a request of every client waits in the socket's
#   backlog; then #2 starts, says READY=1 and serves them. Every request gets
#   200 with the visitor's session, and both sessionds answered some.
# E2E_CHECKS="name ..." runs only those checks (the functions below).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
LAUNCHER="$SESSIOND_SRC/tests/e2e/tools/inherit_socket.py"
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate is missing (scripts/install-deps installs systemd)"

# activate SOCKET...: sessiond under systemd-socket-activate, which listens
# on each SOCKET and starts sessiond (as this pid: it execs) at the first
# connection; its pid in A.
activate() {
  local listen=() s
  for s in "$@"; do rm -f "$s"; listen+=(-l "$s"); done
  # shellcheck disable=SC2086
  systemd-socket-activate "${listen[@]}" "$SESSIOND" serve $AS_ROOT --db "$DB" --pages "$PAGES" \
    >>"$DIR/a.log" 2>&1 &
  A=$!
  STACK_PIDS="$STACK_PIDS $A"
  for s in "$@"; do
    stack_wait_for "$A" test -S "$s" || fail "systemd-socket-activate did not listen on $s"
    # systemd's SocketMode=: nginx's workers (www-data as root) must connect.
    chmod 666 "$s"
  done
}

check_activation() {
  activate "$DIR/a.sock"
  start_nginx a
  [ "$(cat "/proc/$A/comm")" != sessiond ] || fail "sessiond started before anything connected"
  get /home
  expect_status 200 "the first request, which starts sessiond"
  expect_body "Anonymous User" "the first request"
  expect_eq "$(cat "/proc/$A/comm")" sessiond "the process after the first request"
  grep -q "serving the socket from systemd (fd 3)" "$DIR/a.log" || fail "sessiond does not say it serves systemd's socket"
  login "Ann"
  get /home
  expect_body "Hello, <b>Ann</b>" "home after login"
  # systemd's socket is sessiond's fd 3: it never reaches a page.
  get /fds
  expect_eq "$(sort -n "$DIR/body" | tr '\n' ' ')" "0 1 2 " "fds a page starts with under socket activation"
  stack_kill TERM "$A" || fail "sessiond on systemd's socket did not exit 0 on SIGTERM"
  [ -S "$DIR/a.sock" ] || fail "sessiond removed the socket systemd gave it"
  # Started again (systemd would start it at the next connection).
  activate "$DIR/a.sock"
  get /home
  expect_body "Hello, <b>Ann</b>" "home after sessiond was started again"
  get /logout
  expect_status 303 "logout"
  get /home
  expect_body "Anonymous User" "home after logout"
  stack_kill TERM "$A" || fail "sessiond did not exit 0 on SIGTERM"
}

check_refused() {
  # Two sockets: sessiond serves exactly one.
  : >"$DIR/a.log"
  activate "$DIR/x.sock" "$DIR/y.sock"
  curl -s -o /dev/null --max-time 10 --unix-socket "$DIR/x.sock" http://localhost/  # starts sessiond
  wait_exit "$A"
  expect_eq "$?" 2 "exit status with two sockets from systemd"
  grep -q "systemd passed 2 sockets" "$DIR/a.log" || fail "no clear error for two sockets: $(cat "$DIR/a.log")"
  # fd 3 is a regular file.
  local out rc
  out=$(timeout 10 bash -c 'exec 3<"$0"; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"' "$DIR/a.log" \
    "$SESSIOND" serve $AS_ROOT --db "$DB" --pages "$PAGES" 2>&1)
  rc=$?
  expect_eq "$rc" 2 "exit status with a file on fd 3 from systemd"
  [[ "$out" == *"fd 3) is not a listening socket"* ]] || fail "no clear error for a file on fd 3: $out"
}

# The requests answered so far by the load clients.
answered() { cat "$DIR"/load.* 2>/dev/null | wc -l; }
at_least() { [ "$(answered)" -ge "$1" ]; }
# Connections waiting in the listen backlog of the socket (Recv-Q of a
# listening socket).
waiting_at_least() {
  local n
  n=$(ss -xlnH src "$DIR/a.sock" | awk '{ print $3; exit }')
  [ "${n:-0}" -ge "$1" ]
}

check_restart_under_load() {
  rm -rf "$DIR/runs" "$DIR"/load.* && mkdir "$DIR/runs"
  rm -f "$DIR/a.sock"
  python3 "$LAUNCHER" --listen-fds --notify --gate "$DIR/a.sock" 2 "$DIR/runs" "$DIR/b.log" \
    -- "$SESSIOND" serve $AS_ROOT --db "$DB" --pages "$PAGES" &
  local launcher=$!
  STACK_PIDS="$STACK_PIDS $launcher"
  stack_wait_for "$launcher" grep -qx "READY=1" "$DIR/runs/1.notify" 2>/dev/null ||
    fail "sessiond #1 did not say READY=1"
  [ -n "${STACK_NGINX_PID:-}" ] || start_nginx a
  login "Load"
  local first second
  first=$(cat "$DIR/runs/1.pid")

  # 4 clients, up to 400 requests each, until load.stop: bounded in count,
  # and each request in time.
  rm -f "$DIR/load.stop"
  local clients="" k
  for k in 1 2 3 4; do
    (
      for ((i = 1; i <= 400; i++)); do
        [ -e "$DIR/load.stop" ] && exit 0
        code=$(curl -s -b "$JAR" -o "$DIR/body.$k" -w '%{http_code}' --max-time 30 "$(BASE)/served_by")
        echo "$code $(cat "$DIR/body.$k")" >>"$DIR/load.$k"
      done
    ) &
    clients="$clients $!"
    STACK_PIDS="$STACK_PIDS $!"
  done
  stack_wait_for "$launcher" at_least 100 || fail "the load did not get going: $(answered) answered"

  # systemctl restart: SIGTERM, and the next sessiond once this one is gone.
  kill -TERM "$first"
  stack_wait_for "$launcher" test -e "$DIR/runs/1.rc" || fail "sessiond #1 did not exit after SIGTERM"
  expect_eq "$(cat "$DIR/runs/1.rc")" 0 "exit status of sessiond #1"
  grep -qx "STOPPING=1" "$DIR/runs/1.notify" || fail "sessiond #1 did not say STOPPING=1"
  [ -S "$DIR/a.sock" ] || fail "sessiond #1 removed the socket"
  # No sessiond runs: each client's next request waits in the backlog.
  stack_wait_for "$launcher" waiting_at_least 4 ||
    fail "no requests waiting in the socket's backlog: $(ss -xlnH src "$DIR/a.sock")"
  local gap
  gap=$(answered)
  timeout 10 sh -c "echo go >'$DIR/runs/2.go'" || fail "the launcher did not wait to start #2"
  stack_wait_for "$launcher" grep -qx "READY=1" "$DIR/runs/2.notify" 2>/dev/null ||
    fail "sessiond #2 did not say READY=1"
  second=$(cat "$DIR/runs/2.pid")
  stack_wait_for "$launcher" at_least $((gap + 100)) || fail "sessiond #2 did not serve the load"
  touch "$DIR/load.stop"
  for k in $clients; do reap "$k"; done

  local total ok bad
  total=$(answered)
  ok=$(cat "$DIR"/load.* | grep -cE "^200 sessiond=($first|$second) user=Load$")
  bad=$(cat "$DIR"/load.* | grep -vE "^200 sessiond=($first|$second) user=Load$" | sort | uniq -c | head -n 5)
  expect_eq "$ok" "$total" "requests answered 200 with the session across the restart ($bad)"
  cat "$DIR"/load.* | grep -q "sessiond=$first " || fail "sessiond #1 answered none of the load"
  cat "$DIR"/load.* | grep -q "sessiond=$second " || fail "sessiond #2 answered none of the load"
  stack_kill TERM "$launcher" || fail "the launcher did not stop cleanly"
  expect_eq "$(cat "$DIR/runs/2.rc")" 0 "exit status of sessiond #2"
}

for check in ${E2E_CHECKS:-activation refused restart_under_load}; do
  "check_$check"
done
