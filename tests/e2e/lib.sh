# Shared by the end-to-end tests: a real nginx and real sessiond processes
# (scripts/stack.sh), pages from sample_pages/ and tests/e2e/pages/, static
# files from sample_static/, a SQLite file in a fresh directory, and curl as
# the browser.
# CTest sets SESSIOND (the binary) and SESSIOND_SRC (the source tree).
set -u
: "${SESSIOND:?set SESSIOND to the sessiond binary}"
: "${SESSIOND_SRC:?set SESSIOND_SRC to the source tree}"
. "$SESSIOND_SRC/scripts/stack.sh"

PAGES=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-pages.XXXXXX")
cp "$SESSIOND_SRC"/sample_pages/* "$SESSIOND_SRC"/tests/e2e/pages/* "$PAGES"/
chmod 755 "$PAGES"
# nginx serves /static/ and /favicon.ico from here; a copy, because its
# workers (www-data under root) may not be able to read the source tree.
STACK_STATIC=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-static.XXXXXX")
cp "$SESSIOND_SRC"/sample_static/* "$STACK_STATIC"/
chmod 755 "$STACK_STATIC"
# The page helpers (helpers/), where the pages' user can read them. A page
# names them where make install puts them, /usr/share/sessiond/{sh,python,perl}/:
# use_helpers points its copy here instead.
HELPERS=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-helpers.XXXXXX")
cp -R "$SESSIOND_SRC"/helpers/. "$HELPERS"/
chmod -R a+rX "$HELPERS"
use_helpers() {
  for _f in "$@"; do
    ! grep -q '/usr/share/sessiond/\(sh\|python\|perl\)' "$_f" ||
      sed -i "s#/usr/share/sessiond/\\(sh\\|python\\|perl\\)#$HELPERS/\\1#g" "$_f"
  done
}
use_helpers "$PAGES"/*
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-e2e.XXXXXX")
stack_init "$DIR"
DB="$DIR/sessions.db"
JAR="$DIR/cookies"
cleanup() { stack_stop; rm -rf "$DIR" "$PAGES" "$STACK_STATIC" "$HELPERS"; }
trap cleanup EXIT

fail() {
  echo "FAIL ($(basename "$0")): $*" >&2
  for f in "$DIR"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}

# start_sessiond NAME [ARGS...]: a sessiond on $DB serving $PAGES.
start_sessiond() {
  _n=$1; shift
  stack_sessiond "$_n" --db "$DB" --pages "$PAGES" "$@" || fail "sessiond $_n did not start"
}
# What a sessiond started directly (not through start_sessiond) needs as root.
AS_ROOT=""
[ "$(id -u)" -eq 0 ] && AS_ROOT=${STACK_USER---allow-root}
start_nginx() { stack_nginx "$PAGES" "$@" || fail "nginx did not start"; }
# stop_web nginx|apache: stops the web server a test started (its pid known to the stack).
stop_web() {
  if [ "$1" = nginx ]; then stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop cleanly"
  else stack_kill TERM "$STACK_APACHE_PID" || fail "apache did not stop cleanly"; fi
}
BASE() { echo "http://127.0.0.1:$STACK_PORT"; }

# get PATH [CURL ARGS...]: a request as the browser whose cookies are in
# $JAR. Leaves STATUS, the response headers in $DIR/headers and the body in
# $DIR/body.
get() {
  _path=$1; shift
  _curl "$_path" -b "$JAR" -c "$JAR" "$@"
}
post() { _p=$1; shift; get "$_p" -X POST "$@"; }
# get_cookie COOKIE PATH [CURL ARGS...]: a request with exactly this Cookie
# header, as another browser; cookies it is given land in $DIR/other-jar.
get_cookie() {
  _c=$1; _path=$2; shift 2
  rm -f "$DIR/other-jar"
  _curl "$_path" -H "Cookie: $_c" -c "$DIR/other-jar" "$@"
}
_curl() {
  _path=$1; shift
  STATUS=$(curl -s -D "$DIR/headers" -o "$DIR/body" -w '%{http_code}' --max-time 30 "$@" \
                "$(BASE)$_path") || fail "curl $_path failed"
}
body() { cat "$DIR/body"; }
header() { grep -i "^$1:" "$DIR/headers" | sed 's/^[^:]*: *//; s/\r$//'; }
# cookie [NAME [JAR]]: the value of cookie NAME (default sid) in a jar.
cookie() { [ -e "${2:-$JAR}" ] && awk -v n="${1:-sid}" '$6 == n { print $7 }' "${2:-$JAR}"; }

expect_status() { [ "$STATUS" = "$1" ] || fail "$2: status $STATUS, expected $1; body: $(body | head -c 300)"; }
expect_body() { body | grep -q -- "$1" || fail "$2: body lacks '$1': $(body | head -c 300)"; }
expect_no_body() { ! body | grep -q -- "$1" || fail "$2: body has '$1'"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }
sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
# hold_write_lock / release_write_lock: an operator's sqlite3 shell on $DB
# takes SQLite's write lock and keeps it until released (a store busy for
# every writer of sessiond; reads go on, the file is in WAL mode).
hold_write_lock() {
  rm -f "$DIR/shell-in" "$DIR/shell-out"
  mkfifo "$DIR/shell-in"
  sqlite3 "$DB" <"$DIR/shell-in" >"$DIR/shell-out" 2>&1 &
  SHELL_PID=$!
  STACK_PIDS="$STACK_PIDS $SHELL_PID"  # stopped with the stack should the test fail
  exec 3>"$DIR/shell-in"
  echo "BEGIN IMMEDIATE; SELECT 'locked';" >&3
  stack_wait_for "$SHELL_PID" grep -q locked "$DIR/shell-out" || fail "sqlite3 did not take the lock"
}
release_write_lock() {
  echo "COMMIT;" >&3
  exec 3>&-
  reap "$SHELL_PID"
}

login() {
  post /login --data "UserName=$1"
  expect_status 303 "login as $1"
}

# in_background STATUSFILE PATH: a request through nginx, in the background
# (its pid in BG); its HTTP status lands in STATUSFILE once it is answered.
in_background() {
  rm -f "$1"
  curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$(BASE)$2" >"$1" &
  BG=$!
  STACK_PIDS="$STACK_PIDS $BG"
}
# reap PID: waits for a process of ours that is ending, forgets its pid (so
# stack_stop never signals a pid the system reused), returns its status.
reap() {
  wait "$1"
  local status=$?
  STACK_PIDS=$(echo "$STACK_PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
  return "$status"
}
# wait_exit PID: waits (up to ~10 s) for a process of ours that was told to
# stop, and returns its exit status.
wait_exit() {
  local i=0 state
  while state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]; do
    i=$((i + 1))
    [ "$i" -le 500 ] || { echo "process $1 did not exit" >&2; return 124; }
    sleep 0.02
  done
  reap "$1"
}
# block_worker: a request to a page that holds its worker (tests/e2e/pages/block)
# until release_block; the curl's pid in BLOCKED_CURL, its status in $DIR/blocked.
# sessiond's pid must be in A.
block_worker() {
  rm -f "$PAGES/block.started" "$DIR/blocked"
  [ -p "$PAGES/block.fifo" ] || mkfifo "$PAGES/block.fifo"
  in_background "$DIR/blocked" /block
  BLOCKED_CURL=$BG
  stack_wait_for "$A" test -e "$PAGES/block.started" || fail "the blocking page did not start"
}
release_block() {
  timeout 10 sh -c "echo go >'$PAGES/block.fifo'" || fail "the blocking page was not waiting"
}

# restart ARGS...: sessiond "a" (behind nginx) anew, with these settings and
# an empty a.log; its pid in A (empty: none running yet).
A=""
restart() {
  [ -z "$A" ] || stack_kill TERM "$A" || fail "sessiond did not stop cleanly"
  : >"$DIR/a.log"
  start_sessiond a "$@"
  A=$STACK_PID
}
# expect_static_files: the stylesheet and the icon of sample_static/ come from
# the web server itself, a missing one is its 404, and sessiond never saw
# them (it logs every request it fails, so one that reached it would leave a line).
expect_static_files() {
  get /static/style.css
  expect_status 200 "stylesheet"
  expect_eq "$(header Content-Type)" "text/css" "stylesheet's type"
  cmp -s "$DIR/body" "$SESSIOND_SRC/sample_static/style.css" || fail "stylesheet: not sample_static/style.css"
  get /favicon.ico
  expect_status 200 "favicon"
  expect_eq "$(header Content-Type)" "image/x-icon" "favicon's type"
  cmp -s "$DIR/body" "$SESSIOND_SRC/sample_static/favicon.ico" || fail "favicon: not sample_static/favicon.ico"
  get /static/missing.css
  expect_status 404 "missing static file"
  ! grep -E ' (/static/|/favicon\.ico)' "$DIR/a.log" || fail "sessiond saw a static file request"
}

# php_www [DIR...]: the PHP test pages (tests/e2e/php_pages/ and the DIRs'
# *.php) in $WWW and the bridge in $DIR/bridge, copied where php-fpm's
# workers (www-data under root) can read them; stack_php_fpm includes the
# bridge from there.
php_www() {
  WWW="$DIR/www"
  mkdir -p "$WWW" "$DIR/bridge"
  for _d in "$@" "$SESSIOND_SRC"/tests/e2e/php_pages; do cp "$_d"/*.php "$WWW/"; done
  cp "$SESSIOND_SRC/php/sessiond.php" "$DIR/bridge/"
  chmod -R a+rX "$WWW" "$DIR/bridge"
  export STACK_PHP_INCLUDE="$DIR/bridge"
}

# pg_start: a private PostgreSQL cluster (tests/tools/pg_cluster) in $PGDIR,
# stopped by pid and removed when the test exits, also on failure.
PG_CLUSTER="$SESSIOND_SRC/tests/tools/pg_cluster"
pg_start() {
  PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-pg.XXXXXX")
  trap '"$PG_CLUSTER" stop "$PGDIR"; rm -rf "$PGDIR"; cleanup' EXIT
  "$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start"
}
