#!/bin/bash
# A rolling upgrade, as docs/farm.md gives it, on one SQLite file and then on
# one PostgreSQL database: two sessionds behind one nginx serve four visitors
# who keep counting, while one member is upgraded to the next schema version
# (tests/tools/sessiond_next.cc: an expand step and a contract step), rolled
# back, upgraded again, and the other upgraded after it. No request fails and
# no count is lost; `migrate --finish` is refused while an older member
# runs, changes nothing then, and succeeds once none does; after it the older
# build refuses the store.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
: "${SESSIOND_NEXT:?set SESSIOND_NEXT to the sessiond_next binary}"
OLD=$SESSIOND
NEW=$SESSIOND_NEXT
pg_start

# as BUILD NAME: (re)starts member NAME (a or b) as BUILD, on $DB.
as() {
  _bin=$1 _name=$2
  _pid=$(eval echo "\${PID_$_name:-}")
  [ -z "$_pid" ] || stack_kill TERM "$_pid" || fail "member $_name did not stop cleanly"
  SESSIOND=$_bin start_sessiond "$_name"
  eval "PID_$_name=\$STACK_PID"
}
migrate() { "$NEW" migrate --db "$DB" "$@" >"$DIR/out" 2>"$DIR/err"; RC=$?; }

# Four visitors count through nginx until $DIR/stop appears (at most 3000
# requests or 90 s each, and never past the test). Each keeps its successes so far in visitor.N.ok,
# and its failed requests in visitor.N.errors.
visitors() {
  rm -f "$DIR/stop" "$DIR"/visitor.* "$DIR"/jar.*
  VISITORS=""
  for v in 1 2 3 4; do
    (
      ok=0 i=0 end=$((SECONDS + 90))
      # ...and not past the test itself ($$: the test's shell), which may fail.
      while [ ! -e "$DIR/stop" ] && [ $i -lt 3000 ] && [ $SECONDS -lt $end ] && kill -0 $$ 2>/dev/null; do
        i=$((i + 1))
        body=$(curl -s -b "$DIR/jar.$v" -c "$DIR/jar.$v" -w ' %{http_code}' "$(BASE)/count")
        if [ "$body" = "$((ok + 1)) 200" ]; then
          ok=$((ok + 1))
          echo $ok >"$DIR/visitor.$v.ok"
        else
          echo "request $i: $body" >>"$DIR/visitor.$v.errors"
        fi
      done
    ) &
    VISITORS="$VISITORS $!"
  done
}
# Waits until every visitor has counted to at least $1 (a bound of 60 s:
# the visitors count hundreds a second).
counted() {
  for _ in $(seq 1200); do
    _all=1
    for v in 1 2 3 4; do
      [ "$(cat "$DIR/visitor.$v.ok" 2>/dev/null || echo 0)" -ge "$1" ] || _all=0
    done
    [ $_all = 1 ] && return 0
    sleep 0.05
  done
  fail "$what: the visitors did not count to $1"
}
# Stops the visitors; none may have seen a failure or lost a count.
visitors_done() {
  touch "$DIR/stop"
  for p in $VISITORS; do wait "$p"; done
  for v in 1 2 3 4; do
    [ ! -s "$DIR/visitor.$v.errors" ] || fail "$what: visitor $v: $(head -5 "$DIR/visitor.$v.errors")"
  done
}

rolling() {
  what=$1
  unset PID_a PID_b
  as "$OLD" a
  as "$OLD" b
  visitors
  counted 20

  as "$NEW" b  # expands the store; a, older, goes on serving it
  counted 40
  migrate
  [ "$RC" = 0 ] || fail "$what: migrate: $(cat "$DIR/err")"
  grep -q "  0\.1\.0  schema " "$DIR/out" && grep -q "  0\.1\.0+next  schema " "$DIR/out" ||
    fail "$what: migrate does not show both versions: $(cat "$DIR/out")"
  migrate --finish
  [ "$RC" = 1 ] || fail "$what: migrate --finish with an older member running: exit $RC, expected 1"
  grep -q "refused, nothing changed: .*(0.1.0, schema " "$DIR/err" || fail "$what: the refusal: $(cat "$DIR/err")"

  as "$OLD" b  # rolled back: the older build serves the expanded store
  counted 60
  as "$NEW" b
  as "$NEW" a  # the last older member
  counted 80
  visitors_done

  migrate --finish
  [ "$RC" = 0 ] || fail "$what: migrate --finish once all are new: exit $RC: $(cat "$DIR/err")"
  grep -q "^finished: 1 contract step run" "$DIR/out" || fail "$what: finish said: $(cat "$DIR/out")"
  get /count
  expect_status 200 "$what: after the finish"
  # The older build now refuses the store, and says why.
  "$OLD" serve --db "$DB" --pages "$PAGES" --listen "unix:$DIR/c.sock" ${AS_ROOT:+$AS_ROOT} >"$DIR/old.out" 2>&1
  RC=$?
  [ "$RC" = 2 ] || fail "$what: the older build on a finished store: exit $RC, expected 2"
  grep -q "needs a sessiond of schema version" "$DIR/old.out" || fail "$what: $(cat "$DIR/old.out")"
  # ...and so does its serve --test, before anyone restarts it there.
  "$OLD" serve --test --db "$DB" --pages "$PAGES" --listen "unix:$DIR/c.sock" ${AS_ROOT:+$AS_ROOT} >"$DIR/old.out" 2>&1
  RC=$?
  [ "$RC" != 0 ] || fail "$what: the older build's serve --test on a finished store: exit 0"
  grep -q "needs a sessiond of schema version" "$DIR/old.out" || fail "$what: serve --test: $(cat "$DIR/old.out")"
  stack_kill TERM "$PID_a"
  stack_kill TERM "$PID_b"
}

# nginx's upstream: members a and b, whichever build serves each.
as "$OLD" a
start_nginx a b
stack_kill TERM "$PID_a"
unset PID_a

rolling "SQLite"
DB="postgresql://sessiond:$(cut -d: -f5 "$PGDIR/pgpass")@127.0.0.1:$(cat "$PGDIR/port")/sessions?connect_timeout=2"
rolling "PostgreSQL"
