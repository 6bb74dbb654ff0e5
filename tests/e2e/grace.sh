#!/bin/bash
# Rotation grace through nginx, on SQLite and PostgreSQL: after a login (a regenerate) the old id keeps
# leading to the session, under its new id, for --regenerate-grace: a request
# carrying it reads the logged-in session, its write lands there, and it is
# sent the new id. After the grace, or once the session is logged out, the old
# id is nobody's.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
sessions() { sql 'SELECT count(*) FROM sessions'; }

# within_grace: a login, then the old id within its grace (long, so that a
# loaded machine never outlasts it), then logouts under either id.
within_grace() {
  rm -f "$JAR"
  get "/set?cart=1"
  expect_status 200 "first write"
  OLD=$(cookie)
  login Ann
  NEW=$(cookie)
  [ -n "$NEW" ] && [ "$NEW" != "$OLD" ] || fail "the login did not give a new id"

  # Another tab, still with the old id: the logged-in session, and its new id.
  get_cookie "sid=$OLD" /dump
  expect_status 200 "read with the old id"
  expect_body "^SESSION_ID=$NEW$" "read with the old id"
  expect_body "^SESSION_VAR_UserName=Ann$" "read with the old id"
  expect_eq "$(cookie sid "$DIR/other-jar")" "$NEW" "cookie sent to the old id's tab"
  header Set-Cookie | grep -q "HttpOnly" || fail "the new id's cookie lacks its attributes: $(header Set-Cookie)"
  get_cookie "sid=$OLD" "/set?ajax=1"
  expect_status 200 "write with the old id"
  expect_eq "$(cookie sid "$DIR/other-jar")" "$NEW" "cookie sent to the old id's writer"
  get /dump
  expect_body "^SESSION_VAR_ajax=1$" "the old id's write, in the logged-in session"
  expect_body "^SESSION_VAR_cart=1$" "the logged-in session"
  expect_eq "$(sessions)" 1 "sessions"

  # A logout (under the new id) ends the old one too, within its grace.
  get /logout
  expect_status 303 "logout"
  get_cookie "sid=$OLD" /dump
  expect_body "^SESSION_NEW=1$" "the old id after the logout"
  expect_eq "$(cookie sid "$DIR/other-jar")" "" "cookie sent to the old id after the logout"
  # And a logout through the old id logs the new one out.
  rm -f "$JAR"
  get "/set?cart=2"
  OLD=$(cookie)
  login Bob
  NEW=$(cookie)
  get_cookie "sid=$OLD" /logout
  expect_status 303 "logout with the old id"
  get /dump
  expect_body "^SESSION_NEW=1$" "the new id after a logout through the old one"
  expect_eq "$(sessions)" 0 "sessions after the logouts"
}

restart --regenerate-grace 5m
start_nginx a
within_grace
# The store keeps no clear id: not the old, not the new.
sqlite3 "$DB" .dump | grep -qF -e "$OLD" -e "$NEW" && fail "a clear session id in the database"

# --- A grace of 1 s: once it has passed, the old id is a new visitor's.
restart --regenerate-grace 1
rm -f "$JAR"
get "/set?cart=3"
OLD=$(cookie)
login Cy
NEW=$(cookie)
for _ in $(seq 100); do
  get_cookie "sid=$OLD" /dump
  body | grep -q "^SESSION_NEW=1$" && break
  sleep 0.1
done
expect_body "^SESSION_NEW=1$" "the old id after its grace"
get_cookie "sid=$OLD" "/set?stray=1"
expect_status 200 "write with the old id after its grace"
STRAY=$(cookie sid "$DIR/other-jar")
[ -n "$STRAY" ] && [ "$STRAY" != "$NEW" ] && [ "$STRAY" != "$OLD" ] ||
  fail "the old id's write after its grace was not a new visitor's (cookie '$STRAY')"
get /dump
expect_body "^SESSION_VAR_UserName=Cy$" "the logged-in session"
expect_no_body "stray" "the logged-in session after the old id's late write"

# --- The same on PostgreSQL (the grace on the database server's clock).
pg_start
DB="$("$PG_CLUSTER" uri "$PGDIR")"  # start_sessiond serves --db "$DB"
sessions() { psql -X -q -At "$DB" -c 'SELECT count(*) FROM sessions'; }
restart --regenerate-grace 5m
within_grace
