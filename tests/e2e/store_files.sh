#!/bin/bash
# The database file deleted under a running sessiond: writes get 500 and a log
# line, never an acknowledgement; reads go on. A backup moved into place, or a
# file another sessiond created: it is followed. A read-only file or
# directory: sessiond refuses to start.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# As root, sessiond will refuse to start without --user or --allow-root;
# pass it once this sessiond knows it.
ROOT_ARGS=()
if [ "$(id -u)" -eq 0 ] && "$SESSIOND" serve --help 2>&1 | grep -q -- --allow-root; then
  ROOT_ARGS=(--allow-root)
fi

start_sessiond a "${ROOT_ARGS[@]}"
start_nginx a
get "/set?a=1"
expect_status 200 "first write"
sqlite3 "$DB" ".backup '$DIR/backup.db'"

# Deleted (only the main file: its -wal and -shm stay, as after a careless rm).
rm "$DB"
get "/set?a=2"
expect_status 500 "write after the file was deleted"
[ -z "$(header Set-Cookie)" ] || fail "a refused write set a cookie"
grep -q "500 GET /set: store: database file $DB was deleted or replaced" "$DIR/a.log" ||
  fail "no log line naming the deleted file"
get_cookie "" "/set?b=1"
expect_status 500 "a new visitor's write after the file was deleted"
[ ! -e "$DB" ] || fail "something created $DB again"
get /dump
expect_status 200 "read after the file was deleted"
expect_body "^HTTP_SESSION=a=1$" "read after the file was deleted"

# A backup moved into place: sessiond follows it, and writes land in it.
mv "$DIR/backup.db" "$DB"
get /dump
expect_status 200 "read after a backup was moved into place"
expect_body "^HTTP_SESSION=a=1$" "read after a backup was moved into place"
get "/set?a=3"
expect_status 200 "write after a backup was moved into place"
grep -q "store: database file $DB was replaced; reopened it" "$DIR/a.log" || fail "no log line for the reopen"
expect_eq "$(sql "SELECT value FROM items WHERE key = 'a'")" 3 "the write, in the file at the path"

# Deleted with its -wal and -shm, and created again by another sessiond:
# both now use that one file (before, each kept a file of its own).
rm -f "$DB" "$DB-wal" "$DB-shm"
start_sessiond b "${ROOT_ARGS[@]}"
get "/set?c=1"  # through a, which had the deleted file open
expect_status 200 "write through the first sessiond after another created the file"
expect_eq "$(sql "SELECT value FROM items WHERE key = 'c'")" 1 "the first sessiond's write, in the new file"
stack_stop

# expect_refused WHY DB: sessiond on DB (in a place set up by the caller) exits
# non-zero before serving, with WHY as one line of its output.
expect_refused() {
  local why=$1 out
  shift
  out=$("$@" 2>&1) && fail "sessiond started on a database it cannot write"
  grep -qxF "sessiond: $why" <<<"$out" || fail "sessiond said '$out', expected '$why'"
  [ ! -e "$DIR/ro.sock" ] || fail "sessiond listened before it refused"
}
SERVE=(timeout 10 "$SESSIOND" serve --listen "unix:$DIR/ro.sock" --pages "$PAGES" "${ROOT_ARGS[@]}")
RO="$DIR/ro"
mkdir "$RO"
cp "$DB" "$RO/sessions.db"
if [ "$(id -u)" -eq 0 ]; then
  # Permission bits do not stop root: a read-only mount does, in a mount
  # namespace of its own (gone when the process exits).
  expect_refused "database file $RO/sessions.db is read-only" \
    unshare -m sh -c 'mount -t tmpfs tmpfs "$1" && cp "$2" "$1/" && mount -o remount,ro "$1" &&
                      shift 2 && exec "$@"' sh "$RO" "$DB" "${SERVE[@]}" --db "$RO/sessions.db"
  # A writable file (bound from elsewhere) in a read-only directory.
  expect_refused "directory $RO is not writable: SQLite keeps $RO/sessions.db-wal and $RO/sessions.db-shm beside the database" \
    unshare -m sh -c 'mount -t tmpfs tmpfs "$1" && touch "$1/sessions.db" && mount -o remount,ro "$1" &&
                      mount --bind "$2" "$1/sessions.db" && shift 2 && exec "$@"' \
    sh "$RO" "$DB" "${SERVE[@]}" --db "$RO/sessions.db"
else
  chmod 0400 "$RO/sessions.db"
  expect_refused "database file $RO/sessions.db is read-only" "${SERVE[@]}" --db "$RO/sessions.db"
  chmod 0600 "$RO/sessions.db"
  chmod 0500 "$RO"
  expect_refused "directory $RO is not writable: SQLite keeps $RO/sessions.db-wal and $RO/sessions.db-shm beside the database" \
    "${SERVE[@]}" --db "$RO/sessions.db"
  chmod 0700 "$RO"
fi
