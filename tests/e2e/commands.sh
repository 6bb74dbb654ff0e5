#!/bin/bash
# The operator's commands against the file of a running sessiond behind
# nginx: list, show (by cookie and by digest prefix), logout everywhere, rm,
# gc, stats --json, check (and on a corrupted copy), backup (0600, usable),
# the exit codes 0/1/2, and the server serving and committing while they run.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a

# cmd NAME ARGS...: runs `sessiond NAME ARGS...` with stdout in $DIR/out and
# stderr in $DIR/err; leaves its exit status in RC.
cmd() {
  "$SESSIOND" "$@" >"$DIR/out" 2>"$DIR/err"
  RC=$?
}
out() { cat "$DIR/out"; }
expect_rc() { [ "$RC" = "$1" ] || fail "$2: exit $RC, expected $1; stdout: $(out | head -c 300); stderr: $(head -c 300 "$DIR/err")"; }
expect_out() { out | grep -q -- "$1" || fail "$2: output lacks '$1': $(out | head -c 500)"; }
digest() { sql "SELECT lower(hex(sha3('$1', 256)))"; }

# Two users log in through nginx, each with a browser (cookie jar) of their own.
JAR="$DIR/ann.jar"; login ann; ANN=$(cookie)
JAR="$DIR/bob.jar"; login bob; BOB=$(cookie)
[ -n "$ANN" ] && [ -n "$BOB" ] || fail "no session cookies after login"
ANN_DIGEST=$(digest "$ANN"); BOB_DIGEST=$(digest "$BOB")

# list: a header and one line per live session, named by its tag.
cmd list --db "$DB"
expect_rc 0 "list"
expect_eq "$(out | wc -l)" 3 "lines of list"
expect_out "^TAG  *CREATED  *LAST ACCESS  *EXPIRES  *ITEMS  *BYTES$" "list header"
expect_out "^${ANN_DIGEST:0:8}  20[0-9-]*T[0-9:]*Z  .*  1  *11$" "ann's line in list"
expect_out "^${BOB_DIGEST:0:8} " "bob's line in list"
cmd list --db "$DB" --where UserName=bob --json
expect_rc 0 "list --where --json"
expect_eq "$(python3 -c 'import json,sys; print(" ".join(s["tag"] for s in json.load(sys.stdin)))' <"$DIR/out")" \
  "${BOB_DIGEST:0:8}" "sessions of bob in list --json"

# show: by the cookie value (after --: an id may begin with '-'), and by a prefix.
cmd show --db "$DB" -- "$ANN"
expect_rc 0 "show by cookie"
expect_out "^UserName = \"ann\"$" "show by cookie"
expect_out "^session   $ANN_DIGEST$" "show by cookie names the digest"
cmd show --db "$DB" "${BOB_DIGEST:0:6}"
expect_rc 0 "show by prefix"
expect_out "^UserName = \"bob\"$" "show by prefix"
out | grep -q -- "$BOB" && fail "show printed the session id"

# While bob's page is running (its session loaded, its change not yet
# committed), the commands run, and none of them holds the server up.
mkfifo "$PAGES/block.fifo"
curl -s -o /dev/null -w '%{http_code}' -b "$JAR" --max-time 60 "$(BASE)/block" >"$DIR/block-status" &
CURL=$!
STACK_PIDS="$STACK_PIDS $CURL"  # stopped with the stack if a check fails
stack_wait_for "$CURL" test -e "$PAGES/block.started" || fail "the blocking page did not start"
for c in list stats check; do
  cmd "$c" --db "$DB"
  expect_rc 0 "$c while a page runs"
done
cmd backup --db "$DB" "$DIR/backup.db"
expect_rc 0 "backup while a page runs"
# logout: every session of ann goes; ann's next request is anonymous.
cmd logout --db "$DB" --where UserName=ann
expect_rc 0 "logout"
expect_eq "$(out)" "removed 1 session" "logout output"
timeout 10 sh -c "echo go >'$PAGES/block.fifo'" || fail "the blocking page was not waiting"
wait "$CURL"
STACK_PIDS=$(echo "$STACK_PIDS" | tr ' ' '\n' | grep -vx "$CURL" | tr '\n' ' ')
expect_eq "$(cat "$DIR/block-status")" 200 "bob's page that ran during the commands"
JAR="$DIR/bob.jar"; get /dump
expect_body "SESSION_VAR_blocked=done" "bob's change committed after the commands"
get "/set?after=1"
expect_status 200 "a write through nginx right after the commands"
get /home
expect_body "bob" "bob still logged in after ann's logout"
JAR="$DIR/ann.jar"; get /home
expect_body "Anonymous User" "ann after logout everywhere"
expect_eq "$(sql "SELECT count(*) FROM items WHERE id_hash = sha3('$ANN', 256)")" 0 "ann's items after logout"

# backup: mode 0600, a usable copy, never over an existing file.
expect_eq "$(stat -c %a "$DIR/backup.db")" 600 "mode of the backup"
cmd show --db "$DIR/backup.db" -- "$BOB"
expect_rc 0 "bob in the backup"
expect_out "^UserName = \"bob\"$" "bob in the backup"
cmd check --db "$DIR/backup.db"
expect_rc 0 "check of the backup"
cmd backup --db "$DB" "$DIR/backup.db"
expect_rc 1 "backup over an existing file"

# gc: an expired session (as the server would have left it) is collected.
JAR="$DIR/third.jar"; get "/set?x=1"; THIRD=$(cookie)
sql "UPDATE sessions SET expires = 1 WHERE id_hash = sha3('$THIRD', 256)"
cmd list --db "$DB" --expired
expect_out "^$(digest "$THIRD" | cut -c1-8) " "the expired session in list --expired"
cmd gc --db "$DB" --json
expect_rc 0 "gc"
expect_eq "$(out)" '{"removed": 1}' "gc output"

# stats --json, read by a JSON parser.
cmd stats --db "$DB" --json
expect_rc 0 "stats"
expect_eq "$(python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["live"], s["expired"], s["schema_version"], s["file_bytes"] > 0)' <"$DIR/out")" \
  "1 0 6 True" "stats --json: live, expired, schema version, file size"

# The db can come from the config file the server reads.
printf '[serve]\ndb = "%s"\npages = "%s"\n' "$DB" "$PAGES" >"$DIR/sessiond.ini"
cmd stats --config "$DIR/sessiond.ini"
expect_rc 0 "stats --config"
expect_out "^sessions        1 live, 0 expired$" "stats through the config file"

# check: 0 on the live file; 1, with the problems, on a corrupted copy.
cmd check --db "$DB"
expect_rc 0 "check"
expect_eq "$(out)" "ok" "check output"
cmd backup --db "$DB" "$DIR/corrupt.db"
size=$(stat -c %s "$DIR/corrupt.db")
head -c $((size - 4096)) /dev/zero | tr '\0' 'Z' | dd of="$DIR/corrupt.db" bs=4096 seek=1 conv=notrunc status=none
cmd check --db "$DIR/corrupt.db" --json
expect_rc 1 "check of a corrupted file"
python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if not s["ok"] and s["problems"] else 1)' <"$DIR/out" ||
  fail "check --json of a corrupted file: $(out)"

# rm: several at once, by prefix; an ambiguous prefix is a usage error and removes nothing.
sql "INSERT INTO sessions VALUES (X'abcd01$(printf '0%.0s' {1..58})', 1, 1, 9999999999),
                                 (X'abcd02$(printf '0%.0s' {1..58})', 1, 1, 9999999999)"
cmd rm --db "$DB" abcd
expect_rc 2 "rm of an ambiguous prefix"
grep -q "abcd01.* abcd02" "$DIR/err" || fail "ambiguous prefix: candidates not listed: $(cat "$DIR/err")"
cmd rm --db "$DB" abcd01 abcd02 "${BOB_DIGEST:0:8}"
expect_rc 0 "rm"
expect_eq "$(out)" "removed 3 sessions" "rm output"
JAR="$DIR/bob.jar"; get /home
expect_body "Anonymous User" "bob after rm"

# Exit codes: 1 not found, 2 usage.
cmd show --db "$DB" "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
expect_rc 1 "show of an unknown digest"
cmd show --db "$DB" -- "$BOB"
expect_rc 1 "show of a removed session"
cmd show --db "$DB" 'not-hex!'
expect_rc 2 "show of a malformed name"
cmd list
expect_rc 2 "list without --db"
cmd list --db "$DB" --bogus
expect_rc 2 "list with an unknown option"
cmd list --db "$DIR/missing.db"
expect_rc 1 "list of a missing file"
[ -e "$DIR/missing.db" ] && fail "list created the missing file"
cmd check --db "$DIR/missing.db"
expect_rc 1 "check of a missing file"
true
