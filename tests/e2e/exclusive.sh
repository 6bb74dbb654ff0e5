#!/bin/bash
# SESSION_MODE exclusive: the farm-wide lock of a session, through real nginx
# in front of two sessionds on one store, on a SQLite file and then on
# PostgreSQL. 16 read-modify-write increments of one key sent at once end at
# 16 in exclusive mode; in write mode they lose updates (the page waits until
# all 16 have read, so the loss is certain, not a matter of timing). A
# sessiond stopped (SIGSTOP) while its page holds the lock: the other takes
# the lock once the lease has ended, and nothing of the stalled request is
# stored. kill -9 of a sessiond holding the lock: the other gets it once the
# lease has ended. A request that waits past --lock-wait: 503 with
# Retry-After and one log line; a write-mode request meanwhile is not
# blocked, and both commits keep their keys. And PHP through php-fpm (a stock pool of 5):
# 16 increments at once in exclusive mode end at 16, as PHP's own file
# handler keeps them.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www "$SESSIOND_SRC"/tests/e2e/exclusive
pg_start
mkfifo "$PAGES/slowset.fifo" "$PAGES/hold.fifo"

# The lease: --page-timeout 4s + --busy-timeout 1s + 1 s = 6 s; a waiter of
# a or b waits for up to 30 s, one of c for 200 ms.
COMMON=(--page-timeout 4s --busy-timeout 1s --app "php=unix:$DIR/php.sock")
# /x/PAGE: exclusive, through a and b in turn (nginx's upstream); /a/, /b/,
# /c/PAGE: exclusive, through that one sessiond; /p/NAME: NAME.php in
# php-fpm, exclusive, through a and b; anything else: write mode, as before.
{
  for via in a b c; do
    cat <<EOF
location ~ ^/$via/(?<page>[a-z]+)\$ {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/\$page;
    fastcgi_param SESSION_MODE exclusive;
    fastcgi_pass unix:$DIR/$via.sock;
}
EOF
  done
  cat <<EOF
location ~ ^/x/(?<page>[a-z]+)\$ {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/\$page;
    fastcgi_param SESSION_MODE exclusive;
    fastcgi_pass sessiond;
}
location ~ ^/p/(?<script>[a-z]+)\$ {
    root $WWW;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/\$script.php;
    fastcgi_param SESSIOND_APP php;
    fastcgi_param SESSION_MODE exclusive;
    fastcgi_pass sessiond;
}
EOF
} >"$DIR/nginx-extra-exclusive.conf"

stack_php_fpm php "pm = dynamic" "pm.max_children = 5" "pm.start_servers = 2" \
  "pm.min_spare_servers = 1" "pm.max_spare_servers = 3" || fail "php-fpm did not start"

# sessionds: a, b and c on $DB, with empty logs; their pids in A, B, C.
A=""; B=""; C=""
sessionds() {
  for p in $A $B $C; do stack_kill TERM "$p" || fail "a sessiond did not stop cleanly"; done
  : >"$DIR/a.log"; : >"$DIR/b.log"; : >"$DIR/c.log"
  start_sessiond a "${COMMON[@]}" --lock-wait 30s; A=$STACK_PID
  start_sessiond b "${COMMON[@]}" --lock-wait 30s; B=$STACK_PID
  start_sessiond c "${COMMON[@]}" --lock-wait 200ms; C=$STACK_PID
}

# new_session: a session with n=0, its id in ID.
new_session() {
  rm -f "$JAR"
  get "/set?n=0"
  expect_status 200 "a new session"
  ID=$(cookie)
  [ -n "$ID" ] || fail "no session cookie"
}
# counter: the session's n, as a page sees it.
counter() {
  get_cookie "sid=$ID" /dump
  expect_status 200 "dump"
  body | sed -n 's/^SESSION_VAR_n=//p'
}
# parallel N PATH: N requests of the session $ID at once, through nginx;
# fails unless each is answered 200.
parallel() {
  local i pids="" codes
  rm -f "$DIR"/par.*
  for i in $(seq "$1"); do
    curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H "Cookie: sid=$ID" "$(BASE)$2" >"$DIR/par.$i" &
    pids="$pids $!"
    STACK_PIDS="$STACK_PIDS $!"
  done
  for i in $pids; do reap "$i"; done
  codes=$(for i in "$DIR"/par.*; do cat "$i"; echo; done | sort | uniq -c | tr -s ' ' | tr '\n' ';')
  [ "$codes" = " $1 200;" ] || fail "$1 requests of $2 at once: statuses (count status): $codes"
}
# behind STATUSFILE PATH: a request of the session $ID in the background (its
# curl's pid in BG), its status in STATUSFILE once answered.
behind() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H "Cookie: sid=$ID" "$(BASE)$2" >"$1" &
  BG=$!
  STACK_PIDS="$STACK_PIDS $BG"
}
release_slowset() { timeout 10 sh -c "echo go >'$PAGES/slowset.fifo'" || fail "slowset was not waiting"; }

scenario() {
  local store=$1
  sessionds

  # --- 16 increments at once: exclusive keeps every one, write mode does not.
  new_session
  parallel 16 /x/incr
  expect_eq "$(counter)" 16 "$store: 16 exclusive increments through two sessionds"
  new_session
  rm -rf "$PAGES/incr.d"
  parallel 16 "/incr?barrier=16"
  n=$(counter)
  [ "$n" -ge 1 ] && [ "$n" -lt 16 ] ||
    fail "$store: 16 write-mode increments that all read before any wrote ended at '$n', not below 16"

  # --- A sessiond that stalls while its page holds the lock.
  new_session
  rm -f "$PAGES/slowset.started"
  behind "$DIR/stalled" /a/slowset
  STALLED=$BG
  stack_wait_for "$A" test -e "$PAGES/slowset.started" || fail "$store: slowset did not start"
  kill -STOP "$A"
  get_cookie "sid=$ID" /b/incr
  expect_status 200 "$store: a request while the lock's holder is stalled, once its lease ended"
  release_slowset
  kill -CONT "$A"
  reap "$STALLED"
  [ "$(cat "$DIR/stalled")" != 200 ] || fail "$store: the stalled request was answered 200"
  expect_eq "$(counter)" 1 "$store: the next request's increment"
  expect_no_body "SESSION_VAR_late" "$store: the stalled request's change"
  # The stalled holder's release on the way out freed nothing of another's,
  # and the lock works on: the next request through a takes it at once.
  get_cookie "sid=$ID" /a/incr
  expect_status 200 "$store: a request through the resumed sessiond"
  expect_eq "$(counter)" 2 "$store: after the stall"

  # --- kill -9 of a sessiond holding the lock (its page dies with it).
  rm -f "$PAGES/hold.pid"
  behind "$DIR/killed" /a/hold
  KILLED=$BG
  stack_wait_for "$A" test -e "$PAGES/hold.pid" || fail "$store: hold did not start"
  stack_kill KILL "$A"
  A=""
  get_cookie "sid=$ID" /b/incr
  expect_status 200 "$store: a request after kill -9 of the lock's holder, once its lease ended"
  expect_eq "$(counter)" 3 "$store: after kill -9"
  reap "$KILLED"
  start_sessiond a "${COMMON[@]}" --lock-wait 30s; A=$STACK_PID

  # --- Waiting past --lock-wait: 503 with Retry-After, one log line.
  rm -f "$PAGES/slowset.started"
  behind "$DIR/holder" /a/slowset
  HOLDER=$BG
  stack_wait_for "$A" test -e "$PAGES/slowset.started" || fail "$store: slowset did not start"
  get_cookie "sid=$ID" /c/incr
  expect_status 503 "$store: a request that waited past --lock-wait"
  [ -n "$(header Retry-After)" ] || fail "$store: the 503 has no Retry-After"
  expect_eq "$(grep -c -- "--lock-wait" "$DIR/c.log")" 1 "$store: log lines of the 503"
  # A write-mode request of the session is not blocked by the holder: it
  # commits while the holder's page runs, and the holder's commit merges per
  # key (late=1 joins it; n, which neither wrote, stays).
  get_cookie "sid=$ID" "/set?beside=1"
  expect_status 200 "$store: a write-mode request while the lock is held"
  release_slowset
  reap "$HOLDER"
  expect_eq "$(cat "$DIR/holder")" 200 "$store: the holder's request"
  expect_eq "$(counter)" 3 "$store: nothing of the request refused by the wait"
  expect_body "SESSION_VAR_beside=1" "$store: the write-mode change beside the lock"
  expect_body "SESSION_VAR_late=1" "$store: the holder's change"
}

start_sessiond a "${COMMON[@]}"; A=$STACK_PID  # nginx wants its upstreams there
start_nginx a b
scenario sqlite

# PHP, as its own file handler locks a session: 16 increments at once
# through php-fpm's stock pool of 5.
rm -f "$JAR"
get /p/incr
expect_status 200 "the PHP counter's first request"
ID=$(cookie)
parallel 16 /p/incr
expect_eq "$(counter)" "17" "17 PHP increments, 16 of them at once"

DB="postgresql://sessiond:$(cut -d: -f5 "$PGDIR/pgpass")@127.0.0.1:$(cat "$PGDIR/port")/sessions"
scenario postgres
exit 0
