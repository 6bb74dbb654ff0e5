#!/bin/bash
# --socket-group and --socket-owner: sessiond, run as root, creates its unix
# socket with the default mode 0660; nginx's workers run as www-data. Without
# the option the socket is root:root and nginx cannot connect (502); with
# --socket-group www-data it can (200), and the socket never shows another
# owner. A user or group that does not exist is a settings error (exit 2),
# which serve --test reports too; without root, another owner is refused.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "socket_owner.sh: nginx's workers as www-data and a root-owned socket need root: skipped" >&2
  exit 0
fi

# own_sessiond ARGS...: sessiond "a" on $DIR/a.sock with serve's default
# --socket-mode (stack_sessiond makes it 0666); its pid in A.
own_sessiond() {
  "$SESSIOND" serve --listen "unix:$DIR/a.sock" --db "$DB" --pages "$PAGES" $AS_ROOT "$@" >>"$DIR/a.log" 2>&1 &
  A=$!
  STACK_PIDS="$STACK_PIDS $A"
  stack_wait_for "$A" test -S "$DIR/a.sock" || fail "sessiond did not start"
}

# --- Without the option: root:root 0660, and www-data is refused.
own_sessiond
expect_eq "$(stat -c %U:%G:%a "$DIR/a.sock")" "root:root:660" "the socket without --socket-group"
start_nginx a
get /login
expect_status 502 "nginx (www-data) in front of a root:root 0660 socket"
stack_kill TERM "$A" || fail "sessiond did not stop cleanly"

# --- With --socket-group www-data: the web server's group connects.
own_sessiond --socket-group www-data
expect_eq "$(stat -c %U:%G:%a "$DIR/a.sock")" "root:www-data:660" "the socket with --socket-group www-data"
login ann
get /home
expect_status 200 "nginx (www-data) in front of a root:www-data 0660 socket"
expect_body "ann" "the page behind the socket of group www-data"
stack_kill TERM "$A" || fail "sessiond did not stop cleanly"

# --- --socket-owner: the owner as well.
own_sessiond --socket-owner www-data --socket-mode 0600
expect_eq "$(stat -c %U:%G:%a "$DIR/a.sock")" "www-data:root:600" "the socket with --socket-owner www-data"
get /home
expect_status 200 "nginx (www-data) in front of a socket it owns"
stack_kill TERM "$A" || fail "sessiond did not stop cleanly"

# --- Names that do not exist: settings errors, at start and in serve --test.
for test in "" --test; do
  for bad in "--socket-group no-such-group-sessiond: no such group" \
             "--socket-owner no-such-user-sessiond: no such user"; do
    out=$(timeout 10 "$SESSIOND" serve $test --listen "unix:$DIR/b.sock" --db "$DB" --pages "$PAGES" $AS_ROOT \
          ${bad%%:*} 2>&1)
    expect_eq "$?" 2 "serve $test ${bad%%:*}: exit status ($out)"
    [[ "$out" == *"$bad"* ]] || fail "serve $test ${bad%%:*}: said '$out'"
    [ ! -e "$DIR/b.sock" ] || fail "serve $test ${bad%%:*} created the socket"
  done
done

# --- Without root, another owner is refused at start.
out=$(timeout 10 setpriv --reuid=nobody --regid=nogroup --clear-groups "$SESSIOND" serve \
      --listen "unix:$DIR/b.sock" --db "$DIR/nobody.db" --pages "$PAGES" --socket-owner www-data 2>&1)
expect_eq "$?" 2 "serve as nobody with --socket-owner www-data: exit status"
[[ "$out" == *"--socket-owner www-data: only root can give the socket another owner"* ]] ||
  fail "serve as nobody with --socket-owner www-data: said '$out'"
