#!/bin/bash
# A write that started before a login and ends after it (an AJAX call in
# flight while the visitor logs in) is refused with 409 and no cookie: it
# neither revives the old id as a fresh session nor replaces the login's
# cookie, and the logged-in session stays as the login left it.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a

get "/set?cart=1"
expect_status 200 "first write"
before=$(cookie)
[ -n "$before" ] || fail "no cookie after the first write"

# The late request holds the pre-login cookie; its own cookie jar is apart,
# so what it is given never mixes with the browser's.
mkfifo "$PAGES/slowset.fifo"
curl -s -D "$DIR/late-headers" -o "$DIR/late-body" -w '%{http_code}' --max-time 30 \
  -H "Cookie: sid=$before" -c "$DIR/late-jar" "$(BASE)/slowset" >"$DIR/late-status" &
LATE=$!
stack_wait_for "$LATE" test -e "$PAGES/slowset.started" || fail "the slow page did not start"

login Ann
after=$(cookie)
[ -n "$after" ] && [ "$after" != "$before" ] || fail "the login did not give a new id"

echo go >"$PAGES/slowset.fifo"
wait "$LATE" || fail "the late request failed (curl)"
expect_eq "$(cat "$DIR/late-status")" 409 "status of the write that outlived its session"
grep -qi "^Set-Cookie:" "$DIR/late-headers" &&
  fail "the late write was given a cookie: $(grep -i '^Set-Cookie:' "$DIR/late-headers")"
grep -q "409 GET /slowset" "$DIR/a.log" || fail "no log line for the refused late write"

get /dump
expect_status 200 "read after the login"
expect_body "^SESSION_ID=$after$" "the logged-in session"
expect_body "^SESSION_VAR_UserName=Ann$" "the logged-in session"
expect_body "^SESSION_VAR_cart=1$" "the logged-in session keeps what was there before"
expect_no_body "late" "the logged-in session after the late write"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions after the late write"
expect_eq "$(sql "SELECT count(*) FROM items WHERE key = 'late'")" 0 "late items stored anywhere"
