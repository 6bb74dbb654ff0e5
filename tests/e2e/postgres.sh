#!/bin/bash
# The seed demo on PostgreSQL: through real nginx, with --db postgresql://...
# on a private cluster (tests/tools/pg_cluster, stopped by pid at the end,
# also on failure): login, home, a restart of sessiond keeps the login, the
# operator's commands against the database, and the database stopped (503,
# one log line, no password anywhere) and started again (200, the same
# sessiond, still logged in), and fewer connections than workers.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
PG_CLUSTER="$SESSIOND_SRC/tests/tools/pg_cluster"
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-pg.XXXXXX")
trap '"$PG_CLUSTER" stop "$PGDIR"; rm -rf "$PGDIR"; cleanup' EXIT
"$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start"
# The password in the URI itself, so the test can look for it in the logs.
PASSWORD=$(cut -d: -f5 "$PGDIR/pgpass")
URI="postgresql://sessiond:$PASSWORD@127.0.0.1:$(cat "$PGDIR/port")/sessions?connect_timeout=2"
DB=$URI  # start_sessiond serves --db "$DB"
psql_() { psql -X -q -At "$("$PG_CLUSTER" uri "$PGDIR")" "$@"; }

# A short busy timeout: the stopped database is noticed at once anyway
# (connection refused), and every bound stays short.
restart --busy-timeout 2s
start_nginx a
grep -q -- "$PASSWORD" "$DIR/a.log" && fail "the password is in sessiond's log"

get /home
expect_status 200 "anonymous home"
expect_body "Anonymous User" "anonymous home"
login ann
get /home
expect_body "Hello, <b>ann</b>" "home after login"
ANN=$(cookie)

restart --busy-timeout 2s
get /home
expect_body "Hello, <b>ann</b>" "home after a restart of sessiond"

# The schema is sessiond's, readable in psql as the README shows.
expect_eq "$(psql_ -c "SELECT version FROM sessiond_schema")" 1 "schema version"
expect_eq "$(psql_ -c "SELECT convert_from(value, 'UTF8') FROM items WHERE key = 'UserName'")" ann \
  "the user name in psql"

# The operator's commands against the same database.
cmd() { "$SESSIOND" "$@" >"$DIR/out" 2>"$DIR/err"; RC=$?; }
expect_rc() { [ "$RC" = "$1" ] || fail "$2: exit $RC, expected $1; stdout: $(head -c 300 "$DIR/out"); stderr: $(head -c 300 "$DIR/err")"; }
DIGEST=$(python3 -c 'import hashlib,sys; print(hashlib.sha3_256(sys.argv[1].encode()).hexdigest())' "$ANN")
cmd list --db "$URI"
expect_rc 0 "list"
grep -q "^${DIGEST:0:8} " "$DIR/out" || fail "list lacks ann's session: $(cat "$DIR/out")"
cmd show --db "$URI" -- "$ANN"
expect_rc 0 "show"
grep -q '^UserName = "ann"$' "$DIR/out" || fail "show lacks ann's name: $(cat "$DIR/out")"
cmd stats --db "$URI"
expect_rc 0 "stats"
cmd check --db "$URI"
expect_rc 0 "check"
cmd backup --db "$URI" "$DIR/backup"
expect_rc 1 "backup"
grep -q "pg_dump" "$DIR/err" || fail "backup does not point at pg_dump: $(cat "$DIR/err")"
[ ! -e "$DIR/backup" ] || fail "backup left a file"
grep -q -- "$PASSWORD" "$DIR/out" "$DIR/err" && fail "a command printed the password"

# The database stops: 503, with one log line and no password in it.
"$PG_CLUSTER" stop "$PGDIR"
"$PG_CLUSTER" pid "$PGDIR" >/dev/null && fail "the cluster did not stop"
before=$(wc -l <"$DIR/a.log")
get /home
expect_status 503 "home with the database stopped"
expect_eq "$(($(wc -l <"$DIR/a.log") - before))" 1 "log lines for the failed request"
tail -n 1 "$DIR/a.log" | grep -q "PostgreSQL" || fail "the log line does not say why: $(tail -n 1 "$DIR/a.log")"
grep -q -- "$PASSWORD" "$DIR/a.log" && fail "the password is in sessiond's log"
post /login --data UserName=bob
expect_status 503 "login with the database stopped"

# Back: the same sessiond serves again, and ann is still logged in.
"$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start again"
get /home
expect_status 200 "home with the database back"
expect_body "Hello, <b>ann</b>" "home with the database back"
kill -0 "$A" || fail "sessiond is gone"

# Fewer connections than workers (the role's connection limit, as a pool
# sized too small would do): a worker that cannot connect as it starts
# answers 503 and tries again at its next request; sessiond goes on, and
# once the limit is raised every request is served.
admin_() { psql -X -q -At "$("$PG_CLUSTER" admin-uri "$PGDIR")" "$@"; }
admin_ -c "ALTER ROLE sessiond CONNECTION LIMIT 2" || fail "setting the role's connection limit"
restart --busy-timeout 2s --workers 4
for _ in $(seq 500); do grep -q "a worker could not start" "$DIR/a.log" && break; sleep 0.02; done
grep -q "a worker could not start: PostgreSQL: cannot connect: .*too many connections" "$DIR/a.log" ||
  fail "no worker lacked a connection: $(tail -n 3 "$DIR/a.log")"
for _ in 1 2 3 4; do
  get /home
  case $STATUS in 200|503) ;; *) fail "home with connections short: status $STATUS" ;; esac
done
kill -0 "$A" 2>/dev/null || fail "sessiond stopped for a worker without a connection: $(tail -n 3 "$DIR/a.log")"
admin_ -c "ALTER ROLE sessiond CONNECTION LIMIT -1" || fail "lifting the role's connection limit"
for _ in 1 2 3 4 5 6 7 8; do
  get /home
  expect_status 200 "home once the connection limit is lifted"
  expect_body "Hello, <b>ann</b>" "home once the connection limit is lifted"
done

# logout everywhere, from the command line.
cmd logout --db "$URI" --where UserName=ann
expect_rc 0 "logout"
get /home
expect_body "Anonymous User" "home after logout --where"
grep -q -- "$PASSWORD" "$DIR/a.log" && fail "the password is in sessiond's log"
exit 0
