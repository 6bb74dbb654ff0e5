#!/bin/bash
# A write that started before a login and ends after it (an AJAX call in
# flight while the visitor logs in).
# Without a rotation grace (--regenerate-grace 0) it is refused with 409 and
# no cookie: it neither revives the old id as a fresh session nor replaces
# the login's cookie, and the logged-in session stays as the login left it.
# With one (the default), it lands in the logged-in session and the late
# request is sent the login's id.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
restart --regenerate-grace 0
start_nginx a
mkfifo "$PAGES/slowset.fifo"

# late_write: starts /slowset with the browser's cookie of now (LATE_BEFORE),
# logs in meanwhile (LATE_AFTER: the login's id), then lets the page finish.
# The late request's own cookie jar is apart, so what it is given never mixes
# with the browser's.
late_write() {
  rm -f "$JAR" "$PAGES/slowset.started" "$DIR/late-jar"
  get "/set?cart=1"
  expect_status 200 "first write"
  LATE_BEFORE=$(cookie)
  [ -n "$LATE_BEFORE" ] || fail "no cookie after the first write"
  curl -s -D "$DIR/late-headers" -o "$DIR/late-body" -w '%{http_code}' --max-time 30 \
    -H "Cookie: sid=$LATE_BEFORE" -c "$DIR/late-jar" "$(BASE)/slowset" >"$DIR/late-status" &
  LATE=$!
  stack_wait_for "$LATE" test -e "$PAGES/slowset.started" || fail "the slow page did not start"
  login Ann
  LATE_AFTER=$(cookie)
  [ -n "$LATE_AFTER" ] && [ "$LATE_AFTER" != "$LATE_BEFORE" ] || fail "the login did not give a new id"
  echo go >"$PAGES/slowset.fifo"
  wait "$LATE" || fail "the late request failed (curl)"
}

late_write
expect_eq "$(cat "$DIR/late-status")" 409 "status of the write that outlived its session"
grep -qi "^Set-Cookie:" "$DIR/late-headers" &&
  fail "the late write was given a cookie: $(grep -i '^Set-Cookie:' "$DIR/late-headers")"
grep -q "409 GET /slowset" "$DIR/a.log" || fail "no log line for the refused late write"

get /dump
expect_status 200 "read after the login"
expect_body "^SESSION_ID=$LATE_AFTER$" "the logged-in session"
expect_body "^SESSION_VAR_UserName=Ann$" "the logged-in session"
expect_body "^SESSION_VAR_cart=1$" "the logged-in session keeps what was there before"
expect_no_body "late" "the logged-in session after the late write"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions after the late write"
expect_eq "$(sql "SELECT count(*) FROM items WHERE key = 'late'")" 0 "late items stored anywhere"

# --- With a rotation grace (long here, so that a loaded machine never
# outlasts it): the late write is kept, in the logged-in session.
restart --regenerate-grace 5m
sql 'DELETE FROM sessions'
late_write
expect_eq "$(cat "$DIR/late-status")" 200 "status of the late write within the grace"
expect_eq "$(cookie sid "$DIR/late-jar")" "$LATE_AFTER" "the late request's cookie: the login's id"
get /dump
expect_body "^SESSION_ID=$LATE_AFTER$" "the logged-in session"
expect_body "^SESSION_VAR_UserName=Ann$" "the logged-in session"
expect_body "^SESSION_VAR_late=1$" "the late write, in the logged-in session"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions after the late write within the grace"
