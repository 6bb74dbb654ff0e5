#!/bin/bash
# The seed scenario: anonymous -> login -> home shows the name, and it still
# does after kill -9 of sessiond, after a restart of nginx, and after a
# graceful stop of sessiond (which must exit 0).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
A=$STACK_PID
start_nginx a

get /home
expect_status 200 "anonymous home"
expect_body "Anonymous User" "anonymous home"
[ -z "$(header Set-Cookie)" ] || fail "anonymous home set a cookie"

get /login
expect_status 200 "login form"
expect_body 'name="UserName"' "login form"

login "Ann+%3Cscript%3E"
expect_eq "$(header Location)" "/home" "login redirect"
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after login"

stack_kill KILL "$A"
start_sessiond a
A=$STACK_PID
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after kill -9 of sessiond"

stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop cleanly"
start_nginx a
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after an nginx restart"

stack_kill TERM "$A" || fail "sessiond did not exit 0 on SIGTERM"
[ ! -e "$DIR/a.sock" ] || fail "sessiond left its socket behind"
start_sessiond a
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after a graceful restart of sessiond"

get /logout
expect_status 303 "logout"
expect_eq "$(header Location)" "/login" "logout redirect"
get /home
expect_body "Anonymous User" "home after logout"
