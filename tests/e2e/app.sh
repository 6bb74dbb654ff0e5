#!/bin/bash
# Persistent FastCGI applications behind sessiond: a real nginx whose
# locations name an application with `fastcgi_param SESSIOND_APP`, a real
# sessiond with --app, the real C responder of tests/e2e/apps (libfcgi,
# threaded) and a Python application that breaks the protocol on demand.
# The seed's demo through the app; the body streamed; the app's stderr
# logged with the session id masked; parallel writes of one session all
# kept; every failure (app down, too slow, malformed, refused, too much
# output, unknown name) with its status and no session change; connections
# reused and bounded; no descriptor leaked.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
: "${SESSIOND_RESPONDER:?set SESSIOND_RESPONDER to the test responder binary}"

# start_app NAME COMMAND...: an application listening on $DIR/NAME.sock, its
# output in $DIR/NAME.log (so fail() shows it), its pid in APP_PID.
start_app() {
  local name=$1; shift
  rm -f "$DIR/$name.sock"
  "$@" "$DIR/$name.sock" >>"$DIR/$name.log" 2>&1 &
  APP_PID=$!
  STACK_PIDS="$STACK_PIDS $APP_PID"
  stack_wait_for "$APP_PID" test -S "$DIR/$name.sock" || fail "app $name did not start"
}
start_app counter "$SESSIOND_RESPONDER"
start_app odd python3 "$SESSIOND_SRC/tests/e2e/tools/odd_app.py"

app_location() {  # app_location NGINX-LOCATION APP-NAME
  cat <<CONF
location $1 {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    fastcgi_param SESSIOND_APP $2;
    fastcgi_pass sessiond;
}
CONF
}
{
  app_location '~ ^/(login|home|logout|set|get|echo|warn|big|slow|stats)$' counter
  app_location '/odd/' odd
  app_location '= /down' down
  app_location '= /nope' nope
} >"$DIR/nginx-extra-app.conf"

APPS=(--app "counter=unix:$DIR/counter.sock" --app "odd=unix:$DIR/odd.sock" --app "down=unix:$DIR/down.sock"
      --app-connections 4 --page-timeout 2 --max-output-bytes 1MiB)
restart "${APPS[@]}"
start_nginx a

# --- The seed's demo, through the application.
get /home
expect_status 200 "home, anonymous"
expect_body "Anonymous User" "home, anonymous"
get /set?before=1
expect_status 200 "a first change"
before=$(cookie)
[ -n "$before" ] || fail "a change through the app set no cookie"
login ann
after=$(cookie)
[ -n "$after" ] && [ "$after" != "$before" ] || fail "login through the app did not regenerate the id"
get_cookie "sid=$before" /home
expect_body "Hello, <b>ann</b>" "the id from before the login, within its rotation grace"
get /home
expect_body "Hello, <b>ann</b>" "home after login"
get /get
expect_body "UserName=ann" "the app reads the session"
expect_body "before=1" "regeneration kept the data"
restart "${APPS[@]}"
get /home
expect_body "Hello, <b>ann</b>" "home after a restart of sessiond"

# --- A body larger than what sessiond keeps in memory, streamed to the app.
head -c 300000 /dev/urandom >"$DIR/upload"
post /echo --data-binary "@$DIR/upload" -H "Content-Type: application/octet-stream"
expect_status 200 "echo of a large body"
cmp -s "$DIR/body" "$DIR/upload" || fail "the app did not get the body whole"

# --- The app's stderr is logged, with the session id masked.
get /warn
expect_status 200 "a request whose app writes to stderr"
grep -q "app counter: warn: the cookie was sid=\[session id\]" "$DIR/a.log" || fail "the app's stderr is not logged"
! grep -qF "$after" "$DIR/a.log" || fail "the log holds the session id"

# --- 16 parallel requests of one session, each writing its own key.
sid=$(cookie)
for i in $(seq 1 16); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "Cookie: sid=$sid" "$(BASE)/set?k$i=v$i" >"$DIR/par.$i" &
  STACK_PIDS="$STACK_PIDS $!"
  pids="${pids:-} $!"
done
for p in $pids; do reap "$p"; done
for i in $(seq 1 16); do expect_eq "$(cat "$DIR/par.$i")" 200 "parallel write $i"; done
get /get
for i in $(seq 1 16); do expect_body "k$i=v$i" "parallel write $i kept"; done

# --- A client cannot choose the app: a header reaches pages as HTTP_*.
get /dump -H "Sessiond-App: counter" -H "SESSIOND_APP: counter"
expect_status 200 "a page with a Sessiond-App header"
expect_no_body "^SESSIOND_APP=" "a page's variables"

# --- Failures: the status, a log line, and no session change.
failing() {  # failing PATH STATUS LOG-TEXT
  get "$1"
  expect_status "$2" "$1"
  grep -q "$3" "$DIR/a.log" || fail "$1: no log line with '$3'"
}
failing /down 502 "app down is unreachable: connect to unix:$DIR/down.sock"
failing /nope 500 "SESSIOND_APP names no application 'nope'"
failing /odd/garbage 502 "app odd sent a malformed response: not a FastCGI 1.0 record"
failing /odd/overloaded 502 "app odd refused the request: FCGI_END_REQUEST with protocol status 2"
failing /odd/wrongid 502 "app odd sent a malformed response: a record of type 6 for request 2"
failing /odd/half 502 "app odd closed the connection before FCGI_END_REQUEST"
failing "/big?n=2000000" 502 "app counter output exceeds max_output_bytes"
failing "/slow?ms=60000" 504 "app counter overran page_timeout"
stack_wait_for "$APP_PID" grep -q "slow: the connection was closed" "$DIR/counter.log" ||
  fail "the app did not see its connection to a timed-out request closed"
get /odd/fine
expect_status 200 "the odd app, when it behaves"
get /get
for key in odd big slow; do expect_no_body "$key=1" "a failed request's change ($key)"; done
expect_body "UserName=ann" "the session after the failures"

# --- Connections are reused and bounded; no descriptor leaks under faults.
fds() { find "/proc/$A/fd" -mindepth 1 -maxdepth 1 | wc -l; }
fds_before=$(fds)
for round in $(seq 1 10); do
  for path in /get /down /odd/garbage /odd/overloaded /odd/half "/big?n=2000000" /get /set?x=1; do
    echo "$(BASE)$path"
  done
done >"$DIR/urls"
xargs -P 8 -n 1 curl -s -o /dev/null -H "Cookie: sid=$sid" <"$DIR/urls" || fail "the load's requests failed"
# The pool holds at most --app-connections (4) to each app, open now or not.
fds_settled() { [ "$(fds)" -le $((fds_before + 8)) ]; }
stack_wait_for "$A" fds_settled || fail "sessiond holds $(fds) descriptors after the load, $fds_before before"
get /stats
stats=$(body)
connections=$(echo "$stats" | sed -n 's/.*connections=\([0-9]*\).*/\1/p')
requests=$(echo "$stats" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
[ "$requests" -ge 50 ] || fail "the app served only $requests requests: $stats"
# Since its start: 4 at most open at a time, plus one per connection
# dropped after a failure (the timed-out and oversized ones, twice for the
# sessiond restart) and the twenty of the load.
[ "$connections" -le 30 ] || fail "the app saw $connections connections for $requests requests"
exit 0
