#!/bin/bash
# Two sessiond processes on one SQLite file behind one nginx upstream: what
# one stores, the other serves.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
A=$STACK_PID
start_sessiond b
B=$STACK_PID
start_nginx a b

login Dave
for i in 1 2 3 4; do
  get "/set?n$i=$i"
  expect_status 200 "write $i"
done
for _ in 1 2 3 4; do
  get /home
  expect_body "Dave" "read through the farm"
done

# Only b is left: the session is there.
stack_kill KILL "$A"
get /dump
expect_status 200 "read through b"
expect_body "SESSION_VAR_UserName=Dave" "read through b"
expect_body "SESSION_VAR_n4=4" "read through b"
get "/set?from=b"

# Only a (restarted) is left: b's write is there.
start_sessiond a
stack_kill KILL "$B"
get /dump
expect_body "SESSION_VAR_from=b" "read through a of b's write"
