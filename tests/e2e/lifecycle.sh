#!/bin/bash
# Serving the socket inherited on fd 0 (spawn-fcgi); SIGTERM finishes the
# request in flight, refuses new ones, exits 0; a config file; start-up errors.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

cat >"$DIR/sessiond.ini" <<INI
[serve]
cookie-name = "app_sid"
idle-timeout = "30m"
INI
# spawn-fcgi creates the socket and execs sessiond with it as fd 0.
spawn-fcgi -n -s "$DIR/a.sock" -M 0666 -- "$SESSIOND" serve $AS_ROOT --config "$DIR/sessiond.ini" \
  --db "$DB" --pages "$PAGES" >>"$DIR/a.log" 2>&1 &
A=$!
STACK_PIDS="$STACK_PIDS $A"
stack_wait_for "$A" test -S "$DIR/a.sock" || fail "spawn-fcgi did not start"
start_nginx a

login Frank
[ -n "$(cookie app_sid)" ] || fail "the config file's cookie-name was not used"
get /home
expect_body "Frank" "home through the inherited socket"

# A request in flight when SIGTERM arrives is finished; new ones are refused.
mkfifo "$PAGES/block.fifo"
curl -s -o "$DIR/slow-body" -w '%{http_code}' -b "$JAR" --max-time 30 "$(BASE)/block" >"$DIR/slow-status" &
CURL=$!
stack_wait_for "$A" test -e "$PAGES/block.started" || fail "the blocking page did not start"
kill -TERM "$A"
stack_wait_for "$A" grep -q "stopping" "$DIR/a.log" || fail "sessiond did not log that it is stopping"
get /home
expect_status 502 "a new request while sessiond drains"
echo go >"$PAGES/block.fifo"
wait "$CURL"
expect_eq "$(cat "$DIR/slow-status")" 200 "the request in flight at SIGTERM"
stack_kill TERM "$A" 2>/dev/null
wait "$A"; status=$?
expect_eq "$status" 0 "exit status after SIGTERM"

# Its change was committed: a fresh sessiond serves it.
start_sessiond a --config "$DIR/sessiond.ini"
get /dump
expect_body "SESSION_VAR_blocked=done" "change of the request finished during the drain"

# Start-up errors are one clear line and a non-zero exit.
expect_start_error() {
  local want=$1; shift
  out=$(timeout 10 "$SESSIOND" serve $AS_ROOT "$@" 2>&1) && fail "sessiond started with $*"
  [[ "$out" == *"$want"* ]] || fail "sessiond $*: said '$out', expected '$want'"
}
expect_start_error "another server is listening" --listen "unix:$DIR/a.sock" --db "$DB" --pages "$PAGES"
expect_start_error "not a listening socket" --db "$DB" --pages "$PAGES" </dev/null
expect_start_error "Directory does not exist" --listen "unix:$DIR/c.sock" --db "$DB" --pages "$DIR/nope"
expect_start_error "--idle-timeout" --listen "unix:$DIR/c.sock" --db "$DB" --pages "$PAGES" --idle-timeout 5x
printf '[serve]\nno-such-option = 1\n' >"$DIR/bad.ini"
expect_start_error "unknown option in the config file: serve.no-such-option" --config "$DIR/bad.ini" \
  --listen "unix:$DIR/c.sock" --db "$DB" --pages "$PAGES"
cp "$DB" "$DIR/newer.db"
sqlite3 "$DIR/newer.db" "PRAGMA user_version = 99; UPDATE sessiond_schema SET required = 99"
expect_start_error "needs a sessiond of schema version 99 or later" --listen "unix:$DIR/c.sock" --db "$DIR/newer.db" --pages "$PAGES"
"$SESSIOND" --version | grep -q "^[0-9]" || fail "--version"

# Fewer threads to be had than workers (RLIMIT_NPROC here; a cgroup's
# pids.max alike): exit 1 with the reason, not an abort with threads running.
# The limit counts every thread of the user (root is exempt: run as nobody).
NP=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-nproc.XXXXXX")
chmod 0777 "$NP"
as_user=() uid=$(id -u)
if [ "$uid" -eq 0 ]; then as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups --); uid=$(id -u nobody); fi
tasks=$(ps -L -U "$uid" --no-headers | wc -l)
out=$(timeout 10 "${as_user[@]}" prlimit --nproc=$((tasks + 4)) -- "$SESSIOND" serve \
  --listen "unix:$NP/s.sock" --db "$NP/t.db" --pages "$NP" --workers 8 2>&1)
status=$?
rm -rf "$NP"
expect_eq "$status" 1 "exit status with too few threads for the workers; it said '$out'"
[[ "$out" == *"Resource temporarily unavailable"* ]] || fail "too few threads: said '$out'"

# Ctrl-C: SIGINT stops it the same way, even though a shell starts background
# commands with SIGINT ignored (as this script just did).
A=$STACK_PID  # the sessiond started after the drain
stack_kill INT "$A" || fail "sessiond did not exit 0 on SIGINT"
