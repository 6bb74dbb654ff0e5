#!/bin/bash
# The seed demo on PostgreSQL: through real nginx, with --db postgresql://...
# on a private cluster (tests/tools/pg_cluster, stopped by pid at the end,
# also on failure): login, home, a restart of sessiond keeps the login, the
# operator's commands against the database, and the database stopped (503,
# one log line, no password anywhere) and started again (200, the same
# sessiond, still logged in). Booting without the database and fewer
# connections than workers: pg_boot.sh.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
pg_start
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
expect_eq "$(psql_ -c "SELECT version FROM sessiond_schema")" 5 "schema version"
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
# One line for the outage, not one per request.
expect_eq "$(($(wc -l <"$DIR/a.log") - before))" 1 "log lines for two failed requests"

# Back: the same sessiond serves again, and ann is still logged in.
"$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start again"
get /home
expect_status 200 "home with the database back"
expect_body "Hello, <b>ann</b>" "home with the database back"
kill -0 "$A" || fail "sessiond is gone"

# logout everywhere, from the command line.
cmd logout --db "$URI" --where UserName=ann
expect_rc 0 "logout"
get /home
expect_body "Anonymous User" "home after logout --where"
grep -q -- "$PASSWORD" "$DIR/a.log" && fail "the password is in sessiond's log"
exit 0
