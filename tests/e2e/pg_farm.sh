#!/bin/bash
# A farm on PostgreSQL (tests/e2e/netns_lib.sh): nginx on one machine, round
# robin over two sessionds on two others, PostgreSQL on a fourth, reached over
# TCP with scram-sha-256 and a password from a passfile. The seed demo works
# with every request on the other machine than the one before (log in through
# one, log out through the other); 40 writes of one session held at a barrier
# on both machines at once all land; kill -9 of one sessiond under a write
# load loses no acknowledged write, and the other machine goes on serving.
. "$SESSIOND_SRC/tests/e2e/netns_lib.sh"
farm_network
pg_primary db1
URI="postgresql://sessiond@${BACK[db1]}:$PG_PORT/sessions"
web_start web1 "$URI" --workers 24
web_start web2 "$URI" --workers 24
lb_start

# The seed demo, alternating: each request is answered by the other machine.
LAST=""
via_other() {
  local by; by=$(served_by)
  case $by in web1|web2) ;; *) fail "$1: answered by '$by'" ;; esac
  [ "$by" != "$LAST" ] || fail "$1: answered by $by again"
  LAST=$by
}
get /home
expect_status 200 "anonymous home"
expect_body "Anonymous User" "anonymous home"
via_other "anonymous home"
get /login
expect_body 'name="UserName"' "login form"
via_other "login form"
login "Ann+%3Cscript%3E"
via_other "login"
LOGIN_HOST=$LAST
ann=$(cookie)
for i in 1 2; do
  get /home
  expect_status 200 "home $i after login"
  expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home $i after login"
  via_other "home $i after login"
done
get /logout
expect_status 303 "logout"
expect_eq "$(header Location)" "/login" "logout redirect"
via_other "logout"
[ "$LAST" != "$LOGIN_HOST" ] || fail "logged out through $LAST, the machine of the login"
for i in 1 2; do
  get /home
  expect_body "Anonymous User" "home $i after logout"
  via_other "home $i after logout"
  get_cookie "sid=$ann" /home
  expect_body "Anonymous User" "the logged-out id, request $i"
  via_other "the logged-out id, request $i"
done

# 40 writes of one session, 20 through each machine, all loaded before any of
# them writes (the barrier page holds each until all 40 have arrived): each
# key lands, none overwrites another's.
rm -f "$JAR"
get "/set?first=1"
expect_status 200 "first write of the concurrent session"
rm -rf "$PAGES/barrier.d"
on lb bash -c '
  for i in $(seq 1 40); do
    curl -s -o /dev/null -b "$1" --max-time 60 -w "%{http_code} %header{x-served-by}" \
      "$2/barrier?n=40&k=k$i" >"$3/barrier.$i" &
  done
  wait' _ "$JAR" "$(BASE)" "$DIR"
: >"$DIR/barrier-hosts"
for i in $(seq 1 40); do
  read -r status by <"$DIR/barrier.$i"
  expect_eq "$status" 200 "concurrent write $i"
  host_of "$by" >>"$DIR/barrier-hosts"
done
sort "$DIR/barrier-hosts" | uniq -c >"$DIR/barrier-counts"
grep -qx " *20 web1" "$DIR/barrier-counts" && grep -qx " *20 web2" "$DIR/barrier-counts" ||
  fail "the concurrent writes were not 20 through each machine: $(tr '\n' ' ' <"$DIR/barrier-counts")"
get /dump
for i in $(seq 1 40); do expect_body "^SESSION_VAR_k$i=here$" "concurrent write $i read back"; done
expect_body "^SESSION_VAR_first=1$" "the first write, after 40 concurrent ones"
sid_items=$(psql_on db1 "SELECT count(*) FROM items
  WHERE $(_pg_text db1 key) ~ '^k[0-9]+\$' AND $(_pg_text db1 value) = 'here'")
expect_eq "$sid_items" 40 "concurrent writes in the database"

# kill -9 of web2's sessiond while two loops write: every write answered 2xx
# is in the database; web1 goes on answering.
load_start w1 20000 90
load_start w2 20000 90
load_wait 200 web1 web2
web_kill web2 KILL
for _ in 1 2 3; do load_wait 200 web1; done
load_stop
# nginx takes a request web2 dropped to web1 (a GET: it may retry it).
expect_statuses 200
expect_acknowledged_stored db1

# web2 back: it serves the session web1 wrote.
web_start web2 "$URI"
for _ in 1 2; do
  get_as w1 /dump
  expect_status 200 "dump after web2's restart ($(served_by))"
  expect_body "^SESSION_VAR_w1_1=" "w1's writes after web2's restart ($(served_by))"
done
expect_no_password
