#!/bin/bash
# sessiond's log follows its documented format (README, "Logs"): a start-up
# line with the settings, one line per failed request, a line saying what
# the drain served; and no line, whatever happens, holds a session id, its
# digest, a cookie or a password: through a login, a regeneration, page
# failures (one that prints its session id and cookie to stderr), a 404, an
# oversized Cookie header, an expired and a dead cookie, and a logout.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
SECRET="hunter2-$$-secret"
start_sessiond a --max-cookie-bytes 1KiB
start_nginx a

IDS=""      # every session id a cookie carried during the test
DIGESTS=""  # every id digest the database held
seen() {
  local c
  for c in "$@"; do [ -n "$c" ] && IDS="$IDS $c"; done
  DIGESTS="$DIGESTS $(sql 'SELECT hex(id_hash) FROM sessions' | tr '\n' ' ')"
}

get "/set?cart=1"
expect_status 200 "the first write"
FIRST=$(cookie); seen "$FIRST"
get /stderr
expect_status 200 "a page that prints its session id to stderr"
post /login --data "UserName=ann&Password=$SECRET"
expect_status 303 "the login"
SECOND=$(cookie); seen "$SECOND"
[ "$SECOND" != "$FIRST" ] || fail "the login did not regenerate the id"
get /stderr?fail
expect_status 502 "a failing page that prints its session id to stderr"
get "/fail?password=$SECRET"
expect_status 502 "a failing page with a password in the query string"
get /crash
expect_status 502 "a page killed by a signal"
get /no-such-page
expect_status 404 "a missing page"
get /home -H "Cookie: pad=$(head -c 2000 /dev/zero | tr '\0' a); sid=$SECOND"
expect_status 400 "an oversized Cookie header"
# The id the login replaced, and another visitor's expired session.
get_cookie "sid=$FIRST" /stderr
expect_status 200 "the id the login replaced"
get_cookie "" "/set?other=1"
OTHER=$(cookie sid "$DIR/other-jar"); seen "$OTHER"
sql "UPDATE sessions SET expires = 0 WHERE id_hash = sha3('$OTHER', 256)"
get_cookie "sid=$OTHER" /stderr?fail
expect_status 502 "a failing page with an expired session's cookie"
get /logout
expect_status 303 "the logout"
seen
# HEAD requests of a page with a large body: nginx takes the head and closes
# the connection; nothing was lost, so nothing is logged as not delivered.
for i in 1 2 3 4 5 6 7 8; do
  _curl /huge -I
  expect_status 200 "HEAD of a large page"
done
stack_kill TERM "$STACK_PID" || fail "sessiond did not stop cleanly"

LOG="$DIR/a.log"
# The format: every line is "sessiond: <message>".
bad=$(grep -v '^sessiond: ' "$LOG" | head -n 3)
[ -z "$bad" ] || fail "log lines not in the documented format: $bad"
grep -q '^sessiond: starting sessiond [0-9.]*, pid [0-9]*: listen="unix:.*" .*idle-timeout="20m"' "$LOG" ||
  fail "no start-up line with the settings: $(head -n 2 "$LOG")"
grep -q "^sessiond: 502 GET /fail: page .* exited with status 3$" "$LOG" || fail "no line for the failing page"
grep -q "^sessiond: 404 GET /no-such-page: " "$LOG" || fail "no line for the missing page"
grep -q "^sessiond: 400 GET /home: Cookie header of [0-9]* bytes exceeds max_cookie_bytes$" "$LOG" ||
  fail "no line for the oversized Cookie header"
grep -q "^sessiond: page .*/stderr: debug: SESSION_ID=\[session id\] HTTP_COOKIE=sid=\[session id\]$" "$LOG" ||
  fail "the page's stderr line with its id masked is not there"
grep -q "^sessiond: drained: served 0 requests after the stop, in [0-9]*\.[0-9]\{3\} s$" "$LOG" ||
  fail "no line saying what the drain served"
grep -q "^sessiond: stopped$" "$LOG" || fail "no line saying sessiond stopped"
! grep -q "not delivered" "$LOG" || fail "a HEAD response logged as not delivered: $(grep "not delivered" "$LOG" | head -n 2)"

# Nothing secret anywhere.
[ "$(echo "$IDS" | wc -w)" -ge 3 ] || fail "the test saw too few session ids: $IDS"
for id in $IDS; do
  DIGESTS="$DIGESTS $(sql "SELECT hex(sha3('$id', 256))")"
  ! grep -qF -- "$id" "$LOG" || fail "session id $id is in the log: $(grep -F -- "$id" "$LOG" | head -n 3)"
done
for d in $DIGESTS; do
  ! grep -qiF -- "$d" "$LOG" || fail "id digest $d is in the log: $(grep -iF -- "$d" "$LOG" | head -n 3)"
done
! grep -qF -- "$SECRET" "$LOG" || fail "the password is in the log: $(grep -F -- "$SECRET" "$LOG")"
exit 0
