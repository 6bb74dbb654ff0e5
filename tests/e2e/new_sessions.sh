#!/bin/bash
# Limits on session floods, through nginx. --new-sessions-per-minute:
# anonymous writers flood from four loopback addresses (all of 127/8 is this
# machine's) while a visitor logged in from one of them keeps reading and
# writing without one error; each address gets its allowance, then 503 with
# Retry-After and nothing stored; one log line for the whole flood. The
# address from the web server's SESSION_CLIENT_ADDRESS (IPv6 by its /64),
# never from a client's header; behind Apache too. --max-sessions on SQLite,
# and on PostgreSQL across two sessionds: one counts what the other created.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# Only for the test: the client's address from a request header. A real
# location takes it from a variable only the proxy in front can set.
cat >"$DIR/nginx-extra-client.conf" <<EOF
location = /via-proxy {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/set;
    fastcgi_param SESSION_CLIENT_ADDRESS \$http_x_client;
    fastcgi_pass sessiond;
}
EOF

# from ADDR PATH [CURL ARGS...]: a request from loopback address ADDR
# without cookies (a new visitor), as get leaves it.
from() { _a=$1; _p=$2; shift 2; _curl "$_p" --interface "$_a" "$@"; }
# as_user PATH: the logged-in visitor's request, from 127.0.0.2.
as_user() { get "$1" --interface 127.0.0.2; }
refused() {  # refused WHAT RETRY-AFTER: the last response was the limit's 503
  expect_status 503 "$1"
  [ "$(header Retry-After)" = "$2" ] || fail "$1: Retry-After '$(header Retry-After)', expected $2"
  [ -z "$(header Set-Cookie)" ] || fail "$1: a cookie was sent"
}
sessions() { sql 'SELECT count(*) FROM sessions'; }

restart --new-sessions-per-minute 2
start_nginx a

# --- the rate: a flood beside a logged-in visitor
post /login --data UserName=ann --interface 127.0.0.2  # one of 127.0.0.2's two
expect_status 303 "login from 127.0.0.2"
# flood ADDR N: N anonymous writes from ADDR in a row, their statuses in $DIR/flood.ADDR.
flood() {
  for _i in $(seq "$2"); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 --interface "$1" "$(BASE)/set?k=$_i"
  done >"$DIR/flood.$1"
}
FLOODERS=""
for a in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5; do
  flood "$a" 12 &
  FLOODERS="$FLOODERS $!"
  STACK_PIDS="$STACK_PIDS $!"
done
for i in $(seq 1 15); do
  as_user /count
  expect_status 200 "the logged-in visitor's write $i during the flood"
  expect_eq "$(body)" "$i" "the logged-in visitor's count"
  as_user /served_by
  expect_body "user=ann" "the logged-in visitor's read $i during the flood"
done
for p in $FLOODERS; do reap "$p" || fail "a flooder failed"; done
# Each address's allowance (127.0.0.2 spent one on the login), then 503:
# the allowance grows back one every 30 s, far longer than 12 requests take.
for a in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5; do
  allowed=2
  [ "$a" = 127.0.0.2 ] && allowed=1
  expect_eq "$(head -n "$allowed" "$DIR/flood.$a" | sort -u)" 200 "$a's first $allowed"
  expect_eq "$(sed -n "$((allowed + 1))p" "$DIR/flood.$a")" 503 "$a's next"
  expect_eq "$(sort -u "$DIR/flood.$a" | tr '\n' ' ')" "200 503 " "$a's statuses"
done
expect_eq "$(sessions)" $((1 + 1 + 3 * 2)) "sessions after the flood"
from 127.0.0.3 "/set?k=1"
wait_s=$(header Retry-After)
[ "$wait_s" -ge 1 ] && [ "$wait_s" -le 30 ] || fail "Retry-After '$wait_s': not the wait for 127.0.0.3's next (1 to 30 s)"
refused "a new visitor from a flooding address" "$wait_s"
from 127.0.0.6 "/set?k=1"
expect_status 200 "a new visitor from another address"
# One line for the whole flood (and the request after it), naming the address.
expect_eq "$(grep -c 'new session refused' "$DIR/a.log")" 1 "log lines of refusals"
grep -q "new session refused: client 127.0.0.[2-5] is past --new-sessions-per-minute 2 " "$DIR/a.log" ||
  fail "the refusal's log line: $(grep 'new session refused' "$DIR/a.log")"

# --- the address: the web server's SESSION_CLIENT_ADDRESS, an IPv6 one by its /64
via() { get_cookie "" "/via-proxy?k=1" -H "X-Client: $1"; }
via 2001:db8:1:2::1
expect_status 200 "first from 2001:db8:1:2::/64"
via 2001:db8:1:2::2
expect_status 200 "second from 2001:db8:1:2::/64"
via 2001:db8:1:2:ffff::1
expect_status 503 "third from 2001:db8:1:2::/64"
via 2001:db8:1:3::1
expect_status 200 "first from 2001:db8:1:3::/64"
via "192.0.2.1, 192.0.2.2"
expect_status 500 "a list of addresses"
grep -q "SESSION_CLIENT_ADDRESS '192.0.2.1, 192.0.2.2' is not understood" "$DIR/a.log" ||
  fail "no log line naming SESSION_CLIENT_ADDRESS"
# A client's own header is HTTP_SESSION_CLIENT_ADDRESS: it counts for nothing.
for i in 1 2; do
  from 127.0.0.7 "/set?k=1" -H "Session-Client-Address: 2001:db8:9::$i"
  expect_status 200 "header-forging visitor's request $i"
done
from 127.0.0.7 "/set?k=1" -H "Session-Client-Address: 2001:db8:9::3"
expect_status 503 "a third from 127.0.0.7 whatever its header says"

# --- behind Apache: REMOTE_ADDR as Apache sends it
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop"
STACK_PORT=""
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
for i in 1 2; do
  from 127.0.0.10 "/set?k=$i"
  expect_status 200 "new session $i from 127.0.0.10 through Apache"
done
APACHE_SESSION=$(header Set-Cookie | sed -n 's/^sid=\([^;]*\);.*/\1/p')
from 127.0.0.10 "/set?k=3"
expect_status 503 "a third new session from 127.0.0.10 through Apache"
[ -n "$(header Retry-After)" ] || fail "no Retry-After through Apache"
get_cookie "sid=$APACHE_SESSION" "/set?k=4" --interface 127.0.0.10
expect_status 200 "a session's write from 127.0.0.10 through Apache"
from 127.0.0.11 "/set?k=1"
expect_status 200 "another address through Apache"
stack_kill TERM "$STACK_APACHE_PID" || fail "apache did not stop"
STACK_PORT=""
start_nginx a

# --- the cap, on SQLite: sessions go on, a logout makes room
DB="$DIR/cap.db"
restart --max-sessions 3
for i in 1 2 3; do
  from 127.0.0.1 "/set?k=$i"
  expect_status 200 "new session $i of 3"
  eval "S$i=\$(header Set-Cookie | sed -n 's/^sid=\([^;]*\);.*/\1/p')"
done
from 127.0.0.8 "/set?k=4"
refused "a fourth session" 60
for id in "$S1" "$S2" "$S3"; do
  get_cookie "sid=$id" "/set?k=more"
  expect_status 200 "a session's write at the cap"
done
get_cookie "sid=$S1" /logout
expect_status 303 "logout at the cap"
# The room shows at the collector's next count (every 5 s).
for _ in $(seq 150); do
  from 127.0.0.9 "/set?k=5"
  [ "$STATUS" = 503 ] || break
  sleep 0.1
done
expect_status 200 "a new session once one ended"
expect_eq "$(sessions)" 3 "sessions at the cap"
expect_eq "$(grep -c 'new session refused' "$DIR/a.log")" 1 "log lines of refusals at the cap"
grep -q "503 GET /set: new session refused: the store holds about 3 live sessions, --max-sessions 3 " \
  "$DIR/a.log" || fail "the cap's log line: $(grep 'new session refused' "$DIR/a.log")"

# serve --test prints both, says what the rate means, and warns of a store at its cap.
# shellcheck disable=SC2086
"$SESSIOND" serve --test --db "$DB" --pages "$PAGES" --listen "unix:$DIR/t.sock" $AS_ROOT --max-sessions 3 \
  --new-sessions-per-minute 40 >"$DIR/test.out" 2>"$DIR/test.err"
expect_eq "$?" 0 "serve --test"
grep -qx "max-sessions = 3" "$DIR/test.out" || fail "serve --test lacks max-sessions: $(cat "$DIR/test.out")"
grep -qx "new-sessions-per-minute = 40" "$DIR/test.out" || fail "serve --test lacks new-sessions-per-minute"
grep -q "may create 40 sessions at once, then one every 1.5 s" "$DIR/test.err" ||
  fail "serve --test does not say what the rate means: $(cat "$DIR/test.err")"
grep -q "warning: --max-sessions 3: the store holds 3 live sessions already" "$DIR/test.err" ||
  fail "serve --test does not warn of the full store: $(cat "$DIR/test.err")"

# --- the cap, on PostgreSQL: counted across the farm
pg_start
DB="$(cat "$PGDIR/uri")&connect_timeout=2"
restart --max-sessions 3
for i in 1 2; do
  from 127.0.0.1 "/set?k=$i"
  expect_status 200 "a's new session $i on PostgreSQL"
  eval "P$i=\$(header Set-Cookie | sed -n 's/^sid=\([^;]*\);.*/\1/p')"
done
# b has created nothing: its count is the store's, a's two included.
start_sessiond b --max-sessions 3
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop"
start_nginx b
from 127.0.0.1 "/set?k=3"
expect_status 200 "b's first new session"
from 127.0.0.1 "/set?k=4"
refused "b's second, past the farm's cap" 60
for id in "$P1" "$P2"; do
  get_cookie "sid=$id" "/set?k=more"
  expect_status 200 "a's session written through b at the cap"
done
grep -q "the store holds about 3 live sessions, --max-sessions 3 " "$DIR/b.log" ||
  fail "b's log line: $(grep 'new session refused' "$DIR/b.log")"
exit 0
