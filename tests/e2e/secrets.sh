#!/bin/bash
# No password reaches anything sessiond shows, whatever form it was given
# in (the URI's user:pass@, ?password=, PGPASSWORD, a passfile): not the log
# (even a request for a page named like it), `serve --test`, an error
# message, the metrics, a page's environment, or ps. And a page running as
# sessiond's own user cannot read sessiond's environment, memory or
# descriptors (/proc/PID/environ, mem, fd/, pidfd_getfd), while the page
# itself stays dumpable. Real PostgreSQL (tests/tools/pg_cluster), nginx.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
pg_start
PASSWORD=$(cut -d: -f5 "$PGDIR/pgpass")
[ "${#PASSWORD}" -ge 16 ] || fail "no password in $PGDIR/pgpass"
AT="127.0.0.1:$(cat "$PGDIR/port")"
STATUS_PATH=/sessiond-status
sed -n '/^#location = \/sessiond-status {/,/^#}/ s/^#//p' "$SESSIOND_SRC/nginx/sessiond.conf" \
  >"$DIR/nginx-extra-status.conf"

# clean WHAT FILE...: the password is in none of the files.
clean() {
  local what=$1
  shift
  ! grep -qF -- "$PASSWORD" "$@" || fail "the password is in $what: $(grep -hF -- "$PASSWORD" "$@" | head -n 3)"
}

# form NAME URI [VAR=VALUE...]: sessiond on URI, with those variables in its
# environment, shows the password nowhere.
form() {
  local name=$1 uri=$2 argv=no
  shift 2
  [[ "$uri" == *"$PASSWORD"* ]] && argv=yes
  env "$@" "$SESSIOND" serve --test --listen "unix:$DIR/t.sock" --db "$uri" --pages "$PAGES" $AS_ROOT \
    >"$DIR/test.out" 2>"$DIR/test.err" || fail "$name: serve --test failed: $(cat "$DIR/test.err")"
  grep -q '^db = "postgresql://' "$DIR/test.out" || fail "$name: serve --test shows no db: $(cat "$DIR/test.out")"
  clean "serve --test ($name)" "$DIR/test.out" "$DIR/test.err"

  # As sessiond is started: the variables in its environment.
  local var
  for var in "$@"; do export "${var?}"; done
  DB=$uri restart --status-path "$STATUS_PATH"
  for var in "$@"; do unset "${var%%=*}"; done
  [ -n "${STACK_NGINX_PID:-}" ] || start_nginx a
  get /home
  expect_status 200 "$name: home"
  login ann
  get /home
  expect_body "Hello, <b>ann</b>" "$name: home after login"
  # Once connected, sessiond knows the password libpq used, from wherever:
  # a line that would quote it (a request for a page named like it) masks it.
  get "/$PASSWORD"
  expect_status 404 "$name: a page named like the password"
  grep -q "^sessiond: 404 GET /\*\*\*\*\*\*\*\*: " "$DIR/a.log" ||
    fail "$name: no masked line for the page named like the password: $(tail -n 2 "$DIR/a.log")"
  get /peek
  expect_status 200 "$name: the page that looks around"
  clean "a page's environment ($name)" "$DIR/body"
  ! grep -q '^PGPASSWORD=' "$DIR/body" || fail "$name: PGPASSWORD in a page's environment"
  get "$STATUS_PATH"
  expect_status 200 "$name: the metrics"
  clean "the metrics ($name)" "$DIR/body"
  # ps, and what it reads, show every local user the command line.
  ps -ww -o args= -p "$A" >"$DIR/ps"
  tr '\0' ' ' <"/proc/$A/cmdline" >>"$DIR/ps"
  grep -q -- "--db postgresql://" "$DIR/ps" || fail "$name: ps shows no --db: $(cat "$DIR/ps")"
  clean "ps ($name)" "$DIR/ps"
  if [ "$argv" = yes ]; then
    grep -q "^sessiond: warning: a password on the command line" "$DIR/a.log" ||
      fail "$name: no warning about the password on the command line"
  fi
  stack_kill TERM "$A" || fail "$name: sessiond did not stop cleanly"
  A=""
  clean "the log ($name)" "$DIR/a.log"
}

form "user:pass@" "postgresql://sessiond:$PASSWORD@$AT/sessions"
form "?password=" "postgresql://sessiond@$AT/sessions?connect_timeout=5&password=$PASSWORD"
form "PGPASSWORD" "postgresql://sessiond@$AT/sessions" "PGPASSWORD=$PASSWORD"
form "passfile" "$("$PG_CLUSTER" uri "$PGDIR")"

# Errors: a malformed URI (libpq's message quotes the bad part), and a
# refused password, from a command and from serve.
BAD="postgresql://sessiond:${PASSWORD}%zz@$AT/sessions"
"$SESSIOND" list --db "$BAD" >"$DIR/out" 2>"$DIR/err" && fail "list on a malformed URI succeeded"
grep -q "percent-encoded" "$DIR/err" || fail "list on a malformed URI does not say why: $(cat "$DIR/err")"
clean "list's error" "$DIR/out" "$DIR/err"
"$SESSIOND" list --db "postgresql://sessiond:${PASSWORD}x@$AT/sessions" >"$DIR/out" 2>"$DIR/err" &&
  fail "list with a wrong password succeeded"
clean "list's error" "$DIR/out" "$DIR/err"
timeout 20 "$SESSIOND" serve --listen "unix:$DIR/t.sock" --db "$BAD" --pages "$PAGES" $AS_ROOT >"$DIR/out" 2>&1 &&
  fail "serve on a malformed URI started"
grep -q "percent-encoded" "$DIR/out" || fail "serve on a malformed URI does not say why: $(cat "$DIR/out")"
clean "serve's error" "$DIR/out"

# --- A page running as sessiond's own user (no --user: the shipped unit
# before this advice) cannot read sessiond's environment, where PGPASSWORD
# is, its memory, or its descriptors (its database connections).
if [ "$(id -u)" -ne 0 ]; then
  echo "secrets.sh: not root: the part with sessiond as another user is skipped" >&2
  exit 0
fi
chown nobody "$DIR"  # sessiond creates its socket here
printf '#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups %q "$@"\n' "$SESSIOND" >"$DIR/as-nobody"
chmod 755 "$DIR/as-nobody"
export PGPASSWORD=$PASSWORD
SESSIOND="$DIR/as-nobody" STACK_USER="" DB="postgresql://sessiond@$AT/sessions" restart
unset PGPASSWORD
get /peek
expect_status 200 "the page that looks around, as sessiond's user"
uids=$(head -n 1 "$DIR/body")
[ "$uids" = "uid=$(id -u nobody) sessiond_uid=$(id -u nobody)" ] || fail "the page and sessiond run as: $uids"
for what in environ mem fd; do
  expect_body "^$what=denied$" "sessiond's /proc/PID/$what, to a page of its user"
done
if grep -q "^getfd=skip" "$DIR/body"; then
  echo "secrets.sh: $(grep '^getfd=' "$DIR/body")" >&2
else
  expect_body "^getfd=denied$" "pidfd_getfd on sessiond, from a page of its user"
fi
expect_body "^dumpable=1$" "a page is dumpable again after its exec"
clean "a page's environment (as sessiond's user)" "$DIR/body"
stack_kill TERM "$A" || fail "sessiond as nobody did not stop cleanly"
A=""
clean "the log (as nobody)" "$DIR/a.log"
exit 0
