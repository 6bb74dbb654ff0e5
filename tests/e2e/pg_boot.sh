#!/bin/bash
# sessiond on PostgreSQL that boots before its database, and that has more
# workers than the database takes connections (a private cluster,
# tests/tools/pg_cluster, stopped at the end, also on failure):
# - started with the database stopped: it serves; requests that need the
#   store get 503 with Retry-After, and the log has ONE line for all of
#   them; once the database starts, the same process serves 200s and logs
#   one line saying how long it was away and how many requests it refused.
# - the same under systemd-socket-activate (as systemd/sessiond.socket runs it).
# - settings that waiting does not mend (a wrong password) stop it at start:
#   exit 2, saying so, without the password; serve --test says the same,
#   and of a database out of reach that serve starts anyway.
# - 12 workers and a role limited to 3 connections: every request of a
#   parallel load answered 200; serve --test warns about the limit.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
pg_start
DB="$(cat "$PGDIR/uri")&connect_timeout=2"
admin_() { psql -X -q -At "$("$PG_CLUSTER" admin-uri "$PGDIR")" "$@"; }
"$PG_CLUSTER" stop "$PGDIR"

# requests_refused N: N logins, each answered 503 with Retry-After.
requests_refused() {
  for _ in $(seq "$1"); do
    post /login --data UserName=ann
    expect_status 503 "login with the database stopped"
    [ -n "$(header Retry-After)" ] || fail "a 503 without Retry-After"
  done
}

# --- started with the database stopped ------------------------------------
# shellcheck disable=SC2086
out=$("$SESSIOND" serve --test $AS_ROOT --db "$DB" --pages "$PAGES" 2>&1) ||
  fail "serve --test with the database stopped: exit $?: $out"
[[ "$out" == *"out of reach now"*"serve starts anyway"* ]] || fail "serve --test does not say the database is away: $out"
restart --busy-timeout 2s
start_nginx a
requests_refused 5
expect_eq "$(grep -c "out of reach" "$DIR/a.log")" 1 "log lines saying the database is out of reach"
grep -q "POST /login" "$DIR/a.log" && fail "a line per refused request: $(grep "POST /login" "$DIR/a.log" | head -n 2)"
"$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start"
login ann
get /home
expect_body "Hello, <b>ann</b>" "home once the database is up"
kill -0 "$A" || fail "sessiond is gone"
expect_eq "$(grep -c "starting sessiond" "$DIR/a.log")" 1 "sessiond starts"
grep -q "the database is back after .* 5 requests refused meanwhile" "$DIR/a.log" ||
  fail "no line saying the database is back: $(tail -n 3 "$DIR/a.log")"

# --- the same under systemd-socket-activate --------------------------------
stack_kill TERM "$A" || fail "sessiond did not stop cleanly"
A=""
"$PG_CLUSTER" stop "$PGDIR"
: >"$DIR/a.log"
rm -f "$DIR/a.sock"
# shellcheck disable=SC2086
systemd-socket-activate -l "$DIR/a.sock" "$SESSIOND" serve $AS_ROOT --db "$DB" --pages "$PAGES" \
  --busy-timeout 2s >>"$DIR/a.log" 2>&1 &
A=$!
STACK_PIDS="$STACK_PIDS $A"
stack_wait_for "$A" test -S "$DIR/a.sock" || fail "systemd-socket-activate did not listen"
chmod 666 "$DIR/a.sock"
rm -f "$JAR"
requests_refused 3
expect_eq "$(cat "/proc/$A/comm")" sessiond "the process serving the socket"
expect_eq "$(grep -c "out of reach" "$DIR/a.log")" 1 "log lines saying the database is out of reach"
"$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start"
login bob
get /home
expect_body "Hello, <b>bob</b>" "home once the database is up, socket-activated"
kill -0 "$A" || fail "the socket-activated sessiond is gone"
stack_kill TERM "$A" || fail "the socket-activated sessiond did not stop cleanly"
A=""

# --- a wrong password: a settings error -----------------------------------
WRONG="postgresql://sessiond:Wr0ngPassw0rd@127.0.0.1:$(cat "$PGDIR/port")/sessions"
# shellcheck disable=SC2086
out=$(timeout 20 "$SESSIOND" serve $AS_ROOT --listen "unix:$DIR/w.sock" --db "$WRONG" --pages "$PAGES" 2>&1)
expect_eq "$?" 2 "exit status with a wrong password"
[[ "$out" == *"password authentication failed"* ]] || fail "no clear error for a wrong password: $out"
[[ "$out" == *Wr0ngPassw0rd* ]] && fail "the password is in the output: $out"
# shellcheck disable=SC2086
out=$("$SESSIOND" serve --test $AS_ROOT --db "$WRONG" --pages "$PAGES" 2>&1)
expect_eq "$?" 2 "serve --test's exit status with a wrong password"
[[ "$out" == *"password authentication failed"* ]] || fail "serve --test does not say the password is wrong: $out"
[[ "$out" == *Wr0ngPassw0rd* ]] && fail "serve --test printed the password: $out"

# --- more workers than the role takes connections --------------------------
admin_ -c "ALTER ROLE sessiond CONNECTION LIMIT 3" || fail "setting the role's connection limit"
# shellcheck disable=SC2086
out=$("$SESSIOND" serve --test $AS_ROOT --db "$DB" --pages "$PAGES" --workers 12 2>&1)
[[ "$out" == *"warning: --db-connections 8"*"CONNECTION LIMIT takes (3)"* ]] ||
  fail "serve --test does not warn about the role's limit: $out"
restart --busy-timeout 5s --workers 12
rm -f "$JAR"
login carol
rm -f "$DIR"/par.*
pids=""
for k in $(seq 12); do
  (for _ in $(seq 10); do
     curl -s -b "$JAR" -o /dev/null -w '%{http_code}\n' --max-time 30 "$(BASE)/home" >>"$DIR/par.$k"
   done) &
  pids="$pids $!"
  STACK_PIDS="$STACK_PIDS $!"
done
for p in $pids; do reap "$p"; done
expect_eq "$(cat "$DIR"/par.* | wc -l)" 120 "answers to the parallel load"
expect_eq "$(cat "$DIR"/par.* | grep -cx 200)" 120 "200s with 12 workers and 3 connections ($(sort "$DIR"/par.* | uniq -c | tr '\n' ' '))"
kill -0 "$A" || fail "sessiond is gone"
exit 0
