#!/bin/bash
# Faults of persistent applications, with a real php-fpm behind real
# sessiond and nginx:
# - no replays: a php-fpm worker killed (-9) while it runs a POST that came
#   on a kept, reused connection: the page ran once, the client got 502, the
#   session kept no change;
# - an app that is not there yet (its unix socket does not exist, its name
#   does not resolve): serve --test notes it, exit 0; sessiond
#   starts, answers 502 with one log line for the outage (not one per
#   request), and serves once it appears, with no restart, logging that too;
# - --app naming sessiond's own socket: refused at start and by serve --test
#   (exit 2); a request that comes back to the sessiond that forwarded it
#   (an address the start check cannot tell is its own) is answered 508 at
#   once.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www
chmod 777 "$DIR"
stack_php_location "$WWW" php
# /self goes to the app "self" (the loop at the end).
cat >"$DIR/nginx-extra-self.conf" <<CONF
location = /self {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/self;
    fastcgi_param SESSIOND_APP self;
    fastcgi_pass sessiond;
}
CONF

# --- An app that is not there yet: 502, one line, then served.
restart --app "php=unix:$DIR/php.sock,connections=2"
start_nginx a
for i in 1 2 3; do
  get /pool
  expect_status 502 "request $i while php-fpm is not there"
done
expect_eq "$(grep -c "app php is unreachable" "$DIR/a.log")" 1 "log lines for the outage"
! grep -q "502 GET" "$DIR/a.log" || fail "a line per request during the outage: $(grep "502 GET" "$DIR/a.log" | head -n 2)"
stack_php_fpm php "pm = static" "pm.max_children = 2" || fail "php-fpm did not start"
FPM=$STACK_PID
get "/pool?set[a]=1" -g
expect_status 200 "once php-fpm is there, same sessiond"
expect_eq "$(grep -c "app php at unix:$DIR/php.sock answers again" "$DIR/a.log")" 1 "log lines for the recovery"

# --- A worker killed mid-POST on a reused connection: ran once, 502, no change.
# connections=1: the POST goes on the connection the request above left.
restart --app "php=unix:$DIR/php.sock,connections=1"
get /pool
expect_status 200 "a request that leaves a kept connection"
expect_body "^a=1\$" "the session before the POST"
touch "$DIR/hold"
rm -f "$DIR/started" "$DIR/runs"
curl -s -g -o /dev/null -w '%{http_code}' -b "$JAR" --max-time 30 -X POST --data "x=1" \
  "$(BASE)/pool?set[a]=changed&log=$DIR/runs&started=$DIR/started&hold=$DIR/hold" >"$DIR/post" &
POST=$!
STACK_PIDS="$STACK_PIDS $POST"
stack_wait_for "$A" test -s "$DIR/started" || fail "the POST's page did not start"
kill -9 "$(cat "$DIR/started")"
rm -f "$DIR/hold"  # a second run, if there were one, would not wait
reap "$POST"
expect_eq "$(cat "$DIR/post")" 502 "the POST whose worker was killed"
expect_eq "$(wc -l <"$DIR/runs")" 1 "runs of the POST's page"
grep -q "502 POST /pool.php: app php closed the connection before FCGI_END_REQUEST\|502 POST /pool.php: app php connection failed before FCGI_END_REQUEST" \
  "$DIR/a.log" || fail "no log line for the killed POST"
get /pool
expect_status 200 "the next request"
expect_body "^a=1\$" "the session after the killed POST"

# --- --app at sessiond's own socket: refused at start and by serve --test.
for flag in "" --test; do
  # shellcheck disable=SC2086
  "$SESSIOND" serve $flag --listen "unix:$DIR/own.sock" --db "$DB" --pages "$PAGES" $AS_ROOT \
    --app "self=unix:$DIR/own.sock" >"$DIR/own.out" 2>"$DIR/own.err" </dev/null
  rc=$?
  expect_eq "$rc" 2 "exit status with --app at its own socket ($flag)"
  grep -q "app self=unix:$DIR/own.sock is sessiond's own --listen address" "$DIR/own.err" ||
    fail "no clear message ($flag): $(cat "$DIR/own.err")"
done

# Apps not there yet are no settings error, only a note.
# shellcheck disable=SC2086
"$SESSIOND" serve --test --listen "unix:$DIR/own.sock" --db "$DB" --pages "$PAGES" $AS_ROOT \
  --app "later=unix:$DIR/later.sock" --app "far=app.invalid:9000" >/dev/null 2>"$DIR/own.err" </dev/null ||
  fail "serve --test with apps not there yet: $(cat "$DIR/own.err")"
grep -q "note: --app far: app.invalid does not resolve now" "$DIR/own.err" || fail "no note for far: $(cat "$DIR/own.err")"
grep -q "note: --app later: $DIR/later.sock does not exist yet" "$DIR/own.err" || fail "no note for later"

# --- A loop the start check cannot see (a symlink to its own socket): 508 at once.
ln -s "$DIR/a.sock" "$DIR/alias.sock"
restart --app "php=unix:$DIR/php.sock" --app "self=unix:$DIR/alias.sock"
get /self
expect_status 508 "a request sent back to its own sessiond"
expect_eq "$(grep -c "508 GET /self: a request sessiond forwarded to an --app came back to it" "$DIR/a.log")" 1 \
  "log lines for the loop"
exit 0
