#!/bin/bash
# A PHP application written with PHP's own session API (tests/e2e/php_native/:
# session_start() at the top of each page, no sessiond function in them),
# behind real nginx -> real sessiond -> real php-fpm in Debian's stock pool
# (pm = dynamic, pm.max_children = 5) whose only change is the bridge as
# auto_prepend_file (stack_php_fpm's line), and session.save_path, to see that
# nothing is written there. Walked with curl's cookie jar: login regenerates
# the id, a cart is an array, an early session_write_close() drops later
# changes, logout destroys the session; PHP's own cookie is never sent and no
# session file is made; it survives restarts of php-fpm and of sessiond; two
# requests changing different keys (one of them an array) both keep theirs,
# and so do 20 at once (4x the pool); it works through two pools behind two
# sessionds sharing one store. Then the rest of the API (api.php: options,
# abort, reset, regenerate(false), names and cookie parameters without
# effect, a flush after session_write_close(), old code's isset($_SESSION)
# test, failures keeping nothing) through the same stack, and the directives
# php-fpm sends for pages that change nothing.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www "$SESSIOND_SRC"/tests/e2e/php_native
FILES="$DIR/php-sessions"
mkdir -p "$FILES" "$DIR/barrier"
chmod 777 "$FILES" "$DIR/barrier"
FPM=""
# start_fpm [NAME]: php-fpm NAME (default php) in Debian's stock pool.
start_fpm() {
  stack_php_fpm "${1:-php}" "env[SESSIOND_TEST_POOL] = ${1:-php}" "pm = dynamic" "pm.max_children = 5" "pm.start_servers = 2" \
    "pm.min_spare_servers = 1" "pm.max_spare_servers = 3" \
    "php_admin_value[session.save_path] = $FILES" || fail "php-fpm did not start"
  FPM=$STACK_PID
}
start_fpm
stack_php_location "$WWW" php
# Without a rotation grace: session_regenerate_id(true) kills the old id at once, as PHP's own does.
restart --app "php=unix:$DIR/php.sock" --regenerate-grace 0
start_nginx a

# page PATH [CURL ARGS...]: a request as the visitor of $JAR that must be
# answered 200 or 303, and never carries a cookie of PHP's own session.
page() {
  get "$@" -g
  [ "$STATUS" = 200 ] || [ "$STATUS" = 303 ] || fail "$1: status $STATUS: $(body | head -c 300)"
  ! grep -qi '^Set-Cookie: *PHPSESSID' "$DIR/headers" || fail "$1: PHP sent its own cookie"
}
expect_line() { grep -qxF -- "$1" "$DIR/body" || fail "$2: no line '$1' in: $(body | head -c 600)"; }
item() { sql "SELECT value FROM items WHERE key = '$1'"; }

# --- The walk.
page /index
expect_line "user: nobody" "first visit"
expect_line "visits: 1" "first visit"
FIRST=$(cookie)
[ -n "$FIRST" ] || fail "no sessiond cookie after the first visit"
page /index
expect_line "visits: 2" "second visit"
expect_eq "$(cookie)" "$FIRST" "the id between two visits"
page "/cart?add=apple"
page "/cart?add=apple"
page "/cart?add=pear"
expect_line 'cart: {"apple":2,"pear":1}' "the cart"
expect_eq "$(item cart)" '{"apple":2,"pear":1}' "the cart in the store"
expect_eq "$(item visits)" '2' "an int in the store"

post /login --data user=ann
expect_status 303 "login"
expect_eq "$(header Location)" "/index" "login redirect"
LOGGED=$(cookie)
[ -n "$LOGGED" ] && [ "$LOGGED" != "$FIRST" ] || fail "session_regenerate_id(true) did not change the id"
page /index
expect_line "user: ann" "after login"
expect_line "visits: 3" "after login: the session's data kept"
expect_line 'cart: {"apple":2,"pear":1}' "after login: the cart kept"
get_cookie "sid=$FIRST" "/api?do=start,print"
expect_body "session \[\]" "the id before the login"

# session_write_close() early, session_start() again: what was set before the
# close is stored, what was set while closed is not, the rest is stored.
page /report
expect_line "report for ann" "report"
expect_line "after_close: gone" "a change while the session was closed"
expect_eq "$(item report_started)$(item report_done)" "yesyes" "the report's changes"
expect_eq "$(sql "SELECT count(*) FROM items WHERE key = 'after_close'")" 0 "a change while closed, in the store"

# --- Two requests at once, changing different keys (one an array): both kept.
curl -s -g -o "$DIR/c1" -w '%{http_code}' -b "$JAR" --max-time 30 \
  "$(BASE)/api?dir=$DIR/barrier&do=start,barrier:2,json:cart=%7B%22apple%22:3%7D" >"$DIR/s1" &
P1=$!
curl -s -g -o "$DIR/c2" -w '%{http_code}' -b "$JAR" --max-time 30 \
  "$(BASE)/api?dir=$DIR/barrier&do=start,barrier:2,set:theme=dark" >"$DIR/s2" &
P2=$!
wait "$P1" && wait "$P2" || fail "a concurrent request failed"
expect_eq "$(cat "$DIR/s1") $(cat "$DIR/s2")" "200 200" "two concurrent requests ($(cat "$DIR/c1" "$DIR/c2"))"
expect_eq "$(item cart) $(item theme)" '{"apple":3} dark' "both concurrent changes"

# 20 at once (4x the pool), each adding its own key: all answered, all kept.
pids=()
for i in $(seq 1 20); do
  curl -s -o /dev/null -w '%{http_code}' -b "$JAR" --max-time 30 "$(BASE)/api?do=start,set:burst$i=$i" >"$DIR/burst.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a request of the burst failed"; done
expect_eq "$(cat "$DIR"/burst.*)" "$(printf '200%.0s' $(seq 1 20))" "the burst's statuses"
expect_eq "$(sql "SELECT count(*) FROM items WHERE key LIKE 'burst%'")" 20 "the burst's keys"
sql "DELETE FROM items WHERE key LIKE 'burst%'"

# --- Restarts of php-fpm and of sessiond lose nothing.
stack_kill TERM "$FPM" || fail "php-fpm did not stop cleanly"
start_fpm
page /index
expect_line "user: ann" "after a restart of php-fpm"
restart --app "php=unix:$DIR/php.sock" --regenerate-grace 0
page /index
expect_line "user: ann" "after a restart of sessiond"
expect_line 'cart: {"apple":3}' "the cart after the restarts"

# --- The rest of the API, on the logged-in session.
api() { page "/api?do=$1"; expect_line done "api $1"; }
api status,id,start,status,id
expect_line "status 1" "session_status() before session_start()"
expect_line "id empty" "session_id() before session_start()"
expect_line "status 2" "session_status() after session_start()"
expect_line "id set" "session_id() after session_start()"
api start,set:a=1,abort,start,print
expect_no_body '"a":' "session_abort(): the change dropped from the session read again"
[ -z "$(item a)" ] || fail "a change before session_abort() was stored"
api start,set:b=1,reset,print
expect_no_body '"b":' "session_reset(): the change dropped"
[ -z "$(item b)" ] || fail "a change before session_reset() was stored"
api start_ro,set:c=1,print
[ -z "$(item c)" ] || fail "a change after read_and_close was stored"
BEFORE=$(cookie)
api start,set:d0=1,regen0,set:d=1
AFTER=$(cookie)
[ -n "$AFTER" ] && [ "$AFTER" != "$BEFORE" ] || fail "session_regenerate_id(false) did not change the id"
expect_eq "$(item d0)-$(item d)" 1-1 "changes before and after session_regenerate_id(false)"
api name:other,cookie,cookies_on,appcookie,start,set:e=1
# session.use_cookies is off: PHP answers session_set_cookie_params() with a
# warning and false, and the request goes on.
expect_line "cookie 0 /" "session_get_cookie_params()"
expect_eq "$(header Set-Cookie)" "theme=dark" "the only cookie: the application's own"
expect_eq "$(item e)" 1 "a change after session_name() and cookie parameters"
# session_cache_limiter() is accepted; a response of a session gets
# sessiond's Cache-Control: no-store in place of the page's own.
page "/api?do=limiter:private,start"
expect_eq "$(header Cache-Control)" "no-store" "Cache-Control with session_cache_limiter('private')"
# Output flushed early: the changes made before sessiond_commit() are kept.
page "/api?do=start,set:g=1,commit,flush,set:h=1"
expect_eq "$(item g)-$(item h)" "1-" "changes before sessiond_commit() and a flush, and after"
# session_write_close() then output flushed early (a download): what was
# written before the close is stored; a value that cannot be, a 500 and nothing.
page "/api?do=start,set:i=1,close,flush,set:j=1"
expect_eq "$(item i)-$(item j)" "1-" "session_write_close() then a flush"
get "/api?do=start,set:k=1,object,close,flush" -g
expect_status 500 "an object, session_write_close() then a flush"
[ -z "$(item k)" ] || fail "an object, session_write_close() then a flush: a change was stored"
for fails in start,set:f=1,object start,set:f=1,fatal; do
  get "/api?do=$fails" -g
  expect_status 500 "$fails"
  [ -z "$(item f)" ] || fail "$fails: a change was stored"
done
page "/api?do=start,unset_all"
expect_eq "$(sql "SELECT count(*) FROM items")" 0 "session_unset()"

# --- Logout destroys the session.
page /cart?add=fig
page /logout
expect_eq "$(header Location)" "/index" "logout redirect"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after logout"
page /index
expect_line "user: nobody" "after logout"
expect_line "cart: []" "the cart after logout"

# Old code that starts the session only `if (!isset($_SESSION))` finds it set
# (the bridge's own style) and never starts it: its login still changes the
# id, its logout still ends the session.
page "/api?do=old_start,set:user=cy"
OLD=$(cookie)
page "/api?do=old_start,regen1,set:n=1"
[ -n "$(cookie)" ] && [ "$(cookie)" != "$OLD" ] || fail "session_regenerate_id() after an isset test did not change the id"
expect_eq "$(item user)-$(item n)" "cy-1" "the session after session_regenerate_id() after an isset test"
page "/api?do=old_start,destroy"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after session_destroy() after an isset test"

grep -q PHPSESSID "$JAR" && fail "the jar holds PHP's own cookie"
[ -z "$(ls -A "$FILES")" ] || fail "PHP made session files: $(ls "$FILES")"

# Session ids in URLs (use_trans_sid) would be sessiond's cookie value in
# the page: refused with a 500, the id nowhere in the body.
page "/api?do=start,set:pre=1"
ID=$(cookie)
[ -n "$ID" ] || fail "no session before the use_trans_sid page"
get "/api?do=trans_sid,start,set:t=1,link,print" -g
expect_status 500 "a page that turns session.use_trans_sid on"
grep -qF "$ID" "$DIR/body" && fail "the session id is in the page's body"
[ -z "$(item t)" ] || fail "a page that turned session.use_trans_sid on stored a change"

# An application with a save handler of its own keeps its session there:
# nothing of it is copied into sessiond (an object in it is no 500). PHP's
# files handler writes in the pool's save_path, cleared after.
before=$(sql "SELECT count(*) FROM items")
page "/api?do=own_handler,start,set:own=1,object,print"
expect_eq "$(sql "SELECT count(*) FROM items")" "$before" "items after a page on its own save handler"
grep -q "own save handler" "$DIR"/*.log ||
  fail "no warning that the page's session was on its own save handler"

rm -f "$FILES"/sess_*


# --- No change is sent by a page that never starts the session, or starts
# it and changes nothing (php-fpm talked to directly, as sessiond does).
for q in "do=print" "do=start,print" "do=start,set:a=1" "do=start_ro,print"; do
  python3 "$SESSIOND_SRC/tests/e2e/tools/fcgi_request.py" "unix:$DIR/php.sock" "$WWW/api.php" \
    SESSION_NEW=0 SESSION_ID=x 'HTTP_SESSION=a=1&n=5' SESSION_TYPES=n "QUERY_STRING=$q" >"$DIR/out" 2>"$DIR/err" ||
    fail "$q: no FastCGI answer: $(cat "$DIR/err")"
  ! grep -q '^X-Session-' "$DIR/out" || fail "$q sent a change: $(grep '^X-Session-' "$DIR/out")"
  grep -q '^done' "$DIR/out" || fail "$q: $(head -c 300 "$DIR/out")"
done
# --- Two php-fpm pools behind two sessionds sharing one store, nginx
# sending each request to either: the walk holds whichever serves it.
start_fpm php2
start_sessiond b --app "php=unix:$DIR/php2.sock"
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop cleanly"
start_nginx a b
rm -f "$JAR"
post /login --data user=bob
expect_status 303 "login through two pools"
pools=""
for i in 1 2 3; do
  page "/cart?add=kiwi"
  for _ in 1 2; do   # two in a row: whatever nginx's order, both pools answer one
    page "/api?do=start,pool"
    pools="$pools $(sed -n 's/^pool //p' "$DIR/body")"
  done
done
page /cart
expect_line 'cart: {"kiwi":3}' "the cart, through two pools"
case $pools in *php2*) ;; *) fail "php2 served none of: $pools" ;; esac
case "$pools " in *"php "*) ;; *) fail "php served none of: $pools" ;; esac
page /index
expect_line "user: bob" "logged in, through two pools"
page /logout
page /index
expect_line "user: nobody" "logged out, through two pools"
[ -z "$(ls -A "$FILES")" ] || fail "PHP made session files: $(ls "$FILES")"

# session_id() is sessiond's id; session_create_id() never is.
python3 "$SESSIOND_SRC/tests/e2e/tools/fcgi_request.py" "unix:$DIR/php.sock" "$WWW/api.php" \
  SESSION_NEW=0 SESSION_ID=id-of-the-test HTTP_SESSION=a=1 "QUERY_STRING=do=create_id,start,create_id,whose_id" >"$DIR/out" 2>"$DIR/err"
[ "$(grep -c '^create random' "$DIR/out")" = 2 ] && grep -q '^id sessiond' "$DIR/out" ||
  fail "session ids: $(tr -d '\r' <"$DIR/out" | tail -n 4)"
exit 0
