#!/bin/bash
# Another writer holding the SQLite file past --busy-timeout: 503, nothing
# half-written; once it lets go, writes succeed.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --busy-timeout 200ms
start_nginx a
get "/set?a=1"
expect_status 200 "first write"

# An operator's sqlite3 shell takes the write lock and keeps it.
mkfifo "$DIR/shell-in"
sqlite3 "$DB" <"$DIR/shell-in" >"$DIR/shell-out" 2>&1 &
SHELL_PID=$!
exec 3>"$DIR/shell-in"
echo "BEGIN IMMEDIATE; SELECT 'locked';" >&3
stack_wait_for "$SHELL_PID" grep -q locked "$DIR/shell-out" || fail "sqlite3 did not take the lock"

get "/set?a=2"
expect_status 503 "write while another writer holds the lock"
grep -q "503 GET /set: store:" "$DIR/a.log" || fail "no log line for the busy store"
get /home
expect_status 200 "a read while another writer holds the lock"

echo "COMMIT;" >&3
exec 3>&-
wait "$SHELL_PID"
get /dump
expect_body "^HTTP_SESSION=a=1$" "session after the refused write"
get "/set?a=3"
expect_status 200 "write after the lock is released"
