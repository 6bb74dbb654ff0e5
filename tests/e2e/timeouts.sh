#!/bin/bash
# Idle timeout ends a session; a read refreshes the last-access time only
# when a tenth of the idle window has passed, and then renews the cookie's
# Max-Age (never on the reads between); expired rows are swept.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --idle-timeout 60s --gc-interval 1s --cookie-max-age 1h
start_nginx a
digest() { echo "sha3('$(cookie)', 256)"; }

login Carol
accessed=$(sql "SELECT accessed FROM sessions WHERE id_hash = $(digest)")
# Within the touch window: reads cost no write.
get /home
expect_body "Carol" "read within the touch window"
[ -z "$(header Set-Cookie)" ] || fail "a read within the touch window sent a cookie: $(header Set-Cookie)"
expect_eq "$(sql "SELECT accessed FROM sessions WHERE id_hash = $(digest)")" "$accessed" \
  "last access written on a read within the touch window"

# 10 s later (a tenth of 60 s is 6 s): the read refreshes it.
sql "UPDATE sessions SET accessed = accessed - 10 WHERE id_hash = $(digest)"
get /home
expect_body "Carol" "read after the touch window"
now=$(sql "SELECT accessed FROM sessions WHERE id_hash = $(digest)")
[ "$now" -ge "$accessed" ] || fail "read after the touch window did not refresh the last access"
# The session is in use: its cookie gets its whole Max-Age again, same id,
# or the visitor would be logged out an hour after login however active.
expect_eq "$(header Set-Cookie)" "sid=$(cookie); Path=/; HttpOnly; SameSite=Lax; Max-Age=3600" \
  "the cookie of a read that refreshed the last access"

# Idle for longer than the timeout: the session is over.
sql "UPDATE sessions SET accessed = accessed - 61 WHERE id_hash = $(digest)"
get /home
expect_body "Anonymous User" "home after the idle timeout"
get /dump
expect_body "SESSION_NEW=1" "session after the idle timeout"

# The background sweep deletes expired rows (bounded wait for its next pass).
sql "UPDATE sessions SET expires = expires - 3600"
for _ in $(seq 100); do
  [ "$(sql 'SELECT count(*) FROM sessions')" = 0 ] && break
  sleep 0.1
done
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions left after the sweep"
expect_eq "$(sql 'SELECT count(*) FROM items')" 0 "items left after the sweep"
