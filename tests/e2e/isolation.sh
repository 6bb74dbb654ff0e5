#!/bin/bash
# Pages are isolated from sessiond and from each other: a page starts with
# fds 0, 1 and 2 only, even while sessiond holds other requests' connections;
# a header block with a control byte, or a Set-Cookie for the session cookie,
# fails the page (502, nothing kept); a control byte from a request never
# starts a log line of its own; pages run as --user/--group, and root without
# them is refused; a page leaves no process behind, whether it exits, orphans
# a child outside its process group, or sessiond itself is killed.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# Processes the pages start, stopped by pid if a check below fails and leaves
# them running: "PID:COMMAND", killed only while PID still runs COMMAND.
LEFT=""
stop_left() {
  local pc
  for pc in $LEFT; do
    [ "$(ps -o comm= -p "${pc%%:*}" 2>/dev/null)" = "${pc#*:}" ] && kill -KILL "${pc%%:*}" 2>/dev/null
  done
}
trap 'stop_left; cleanup' EXIT
# gone PID: it no longer runs (a zombie that nothing reaped yet runs nothing).
gone() {
  local stat
  read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

start_sessiond a
A=$STACK_PID
start_nginx a

get "/set?k=original"
expect_status 200 "first write"
unchanged() {
  get /dump
  expect_status 200 "read after $1"
  expect_body "^SESSION_VAR_k=original$" "session after $1"
}

# --- (a) fds 0, 1, 2 and nothing else, while another request is in flight.
mkfifo "$PAGES/block.fifo"
curl -s -o "$DIR/block-body" -w '%{http_code}' --max-time 30 "$(BASE)/block" >"$DIR/block-status" &
BLOCK=$!
stack_wait_for "$BLOCK" test -e "$PAGES/block.started" || fail "the blocking page did not start"
get /fds
expect_status 200 "the page listing its fds"
expect_eq "$(sort -n "$DIR/body" | tr '\n' ' ')" "0 1 2 " "fds a page starts with, another request in flight"
echo go >"$PAGES/block.fifo"
wait "$BLOCK" || fail "the blocked request failed (curl)"
expect_eq "$(cat "$DIR/block-status")" 200 "the blocked request"

# --- (b) A page's header block: control bytes and the session cookie.
for byte in cr nul esc bel; do
  get "/badheader?$byte"
  expect_status 502 "a header value with a control byte ($byte)"
  expect_no_body "sent" "a header value with a control byte ($byte)"
  unchanged "a header value with a control byte ($byte)"
done
expect_eq "$(grep -c "502 GET /badheader: .*control byte" "$DIR/a.log")" 4 "log lines for the control bytes"
get "/badheader?sid"
expect_status 502 "a page's Set-Cookie for the session cookie"
grep -qi "^Set-Cookie: sid=forged" "$DIR/headers" && fail "the page's session cookie reached the client"
unchanged "a page's Set-Cookie for the session cookie"
expect_eq "$(grep -c "502 GET /badheader: .*Set-Cookie for the session cookie" "$DIR/a.log")" 1 \
  "log lines for the page's Set-Cookie for the session cookie"
# An informational status is no answer: passed on, it would end the
# response before its body and desync the client's connection.
for code in 100 101 103; do
  get "/badheader?$code"
  expect_status 502 "a page's Status: $code"
  expect_no_body "sent" "a page's Status: $code"
  unchanged "a page's Status: $code"
done
expect_eq "$(grep -c "502 GET /badheader: page sent a bad Status" "$DIR/a.log")" 3 "log lines for the 1xx statuses"
# Any other cookie is the page's business.
get "/badheader?theme"
expect_status 200 "a page's Set-Cookie for another cookie"
grep -q "^Set-Cookie: theme=dark; Path=/" "$DIR/headers" || fail "the page's other cookie was not passed on"
get /dump
expect_body "^SESSION_VAR_k=changed$" "session after a page's Set-Cookie for another cookie"

# --- (c) A control byte a client sends is escaped in the log.
get "/missing%0Asessiond:%20forged"
expect_status 404 "a missing page with a newline in its name"
grep -q "^sessiond: forged" "$DIR/a.log" && fail "a request's newline started a log line of its own"
grep -qF 'missing\nsessiond: forged' "$DIR/a.log" || fail "no log line with the newline escaped"

# --- (d) Who pages run as.
if [ "$(id -u)" -eq 0 ]; then
  stack_kill TERM "$A" || fail "sessiond did not stop on SIGTERM"
  STACK_USER="--user nobody --group nogroup" start_sessiond a
  A=$STACK_PID
  get /uid
  expect_status 200 "a page run as nobody"
  expect_eq "$(body | tr '\n' ' ')" "$(id -u nobody) $(getent group nogroup | cut -d: -f3) " \
    "user and group ids of a page run with --user nobody --group nogroup"
  stack_kill TERM "$A" || fail "sessiond --user nobody did not stop on SIGTERM"

  # refused TEXT ARGS...: sessiond serve ARGS, as root, exits 2 saying TEXT.
  refused() {
    local want=$1 out status
    shift
    out=$(timeout 10 "$SESSIOND" serve --listen "unix:$DIR/x.sock" --db "$DB" --pages "$PAGES" "$@" 2>&1)
    status=$?
    expect_eq "$status" 2 "exit status of sessiond $* as root; it said '$out'"
    [[ "$out" == *"$want"* ]] || fail "sessiond $* as root: said '$out', expected '$want'"
  }
  refused "--user"
  refused "no such user" --user no-such-user
  [ ! -e "$DIR/x.sock" ] || fail "a sessiond refused as root left a socket behind"

  start_sessiond a
  A=$STACK_PID
fi

# --- (e) Pages leave no process behind.
# A child left running in the page's process group.
get /leavechild
expect_status 200 "a page that leaves a child behind"
child=$(cat "$PAGES/leavechild.pid")
LEFT="$LEFT $child:sleep"
stack_wait_for $$ gone "$child" || fail "the child $child of a page that exited outlived it"

# A child in a session of its own, outside the page's process group.
get /leaveorphan
expect_status 200 "a page that leaves an orphan behind"
orphan=$(cat "$PAGES/leaveorphan.pid")
LEFT="$LEFT $orphan:sleep"
stack_wait_for $$ gone "$orphan" || fail "the orphan $orphan of a page (setsid) outlived it"

# sessiond killed -9 while a page runs: the page dies with it.
mkfifo "$PAGES/hold.fifo"
curl -s -o /dev/null --max-time 30 "$(BASE)/hold" &
HOLD=$!
stack_wait_for "$HOLD" test -s "$PAGES/hold.pid" || fail "the holding page did not start"
page=$(cat "$PAGES/hold.pid")
LEFT="$LEFT $page:hold"
gone "$page" && fail "the holding page $page is not running"
stack_kill KILL "$A" 2>/dev/null  # (quiet: bash reports the kill)
stack_wait_for $$ gone "$page" || fail "the page $page outlived sessiond's kill -9"
wait "$HOLD"
