#!/bin/bash
# PHP through sessiond: real nginx -> real sessiond (--app php=unix:...) ->
# a real php-fpm with a pool of its own, running sample_php/ and the bridge.
# The seed demo in PHP (login regenerates the id, home escapes the name,
# logout abandons; still logged in after a restart of sessiond and of
# php-fpm), values shared with a sh page, non-string values round-tripping
# as JSON items, concurrent requests of one session merging per key, a large
# session, and a PHP page that fails keeping no change.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www "$SESSIOND_SRC"/sample_php
mkdir -p "$DIR/barrier"
chmod 777 "$DIR/barrier"
start_fpm() { stack_php_fpm php "pm.max_children = 10" || fail "php-fpm did not start"; FPM=$STACK_PID; }
start_fpm
# /NAME runs $WWW/NAME.php in the app "php"; other names are sessiond's pages.
stack_php_location "$WWW" php
restart --app "php=unix:$DIR/php.sock"
start_nginx a
# php PATH: a GET of a PHP page through sessiond that must succeed (-g: the
# brackets of PHP's array parameters are not curl's globs).
php() { get "$1" -g; expect_status 200 "GET $1"; }
# expect_line LINE WHAT: the body has exactly this line (session.php prints
# one per item: key, type, JSON of the value).
expect_line() { grep -qxF -- "$1" "$DIR/body" || fail "$2: no line '$1' in: $(body | head -c 600)"; }

# --- The seed demo in PHP.
get /home
expect_status 200 "anonymous home"
expect_body "Anonymous User" "anonymous home"
[ -z "$(header Set-Cookie)" ] || fail "anonymous home set a cookie"
get /login
expect_status 200 "login form"
expect_body 'name="UserName"' "login form"

php "/session?set[before]=login"
BEFORE=$(cookie)
[ -n "$BEFORE" ] || fail "no session cookie after a PHP page stored an item"
login "Ann+%3Cscript%3E"
expect_eq "$(header Location)" "/home" "login redirect"
AFTER=$(cookie)
[ -n "$AFTER" ] && [ "$AFTER" != "$BEFORE" ] || fail "login did not regenerate the id ($BEFORE -> $AFTER)"
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after login"
get_cookie "sid=$BEFORE" /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "the id before the login, within its rotation grace"
php /session
expect_line 'before string "login"' "an item stored before the login, after it"

# A string from PHP is the plain value for a page in another language, and back.
get /dump
expect_body "SESSION_VAR_UserName=Ann <script>" "UserName for a sh page"
get "/set?FromSh=a%20b%2Bc"
php /session
expect_line 'FromSh string "a b+c"' "an item a sh page stored, in PHP"

# A client's own Session: header is not the session.
get /home -H "Session: UserName=forged"
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home with a forged Session header"

# --- Restarts of sessiond and of php-fpm lose nothing.
restart --app "php=unix:$DIR/php.sock"
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after a restart of sessiond"
stack_kill TERM "$FPM" || fail "php-fpm did not stop cleanly"
start_fpm
get /home
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after a restart of php-fpm"

# --- Non-string values come back as they were stored: JSON items in the
# store, their JSON text the value and 'json' their type.
php "/session?json[n]=5&json[f]=2.5&json[b]=false&json[z]=null&json[cart]=%7B%22apple%22%3A2%2C%22ids%22%3A%5B1%2C2%5D%7D&set[j]=json:x"
php /session
for line in 'n int 5' 'f float 2.5' 'b bool false' 'z null null' 'cart array {"apple":2,"ids":[1,2]}' 'j string "json:x"'; do
  expect_line "$line" "non-string values read back"
done
expect_eq "$(sql "SELECT value, type FROM items WHERE key = 'n'")" "5|json" "an int in the store"
expect_eq "$(sql "SELECT value, type FROM items WHERE key = 'cart'")" '{"apple":2,"ids":[1,2]}|json' "an array in the store"
expect_eq "$(sql "SELECT value, type FROM items WHERE key = 'j'")" 'json:x|string' "a string starting with json: in the store"
expect_eq "$(sql "SELECT value, type FROM items WHERE key = 'UserName'")" 'Ann <script>|string' "a string in the store"

# --- 8 requests of one session at once, each setting its own key: all kept.
pids=()
for i in $(seq 1 8); do
  curl -s -g -o "$DIR/out.$i" -w '%{http_code}' -b "$JAR" --max-time 30 \
    "$(BASE)/session?barrier=$DIR/barrier&n=8&set[key$i]=here" >"$DIR/status.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent request failed"; done
for i in $(seq 1 8); do
  expect_eq "$(cat "$DIR/status.$i")" 200 "request $i of 8 at the barrier ($(head -c 300 "$DIR/out.$i"))"
done
php /session
for i in $(seq 1 8); do expect_line "key$i string \"here\"" "key $i after 8 concurrent PHP requests"; done
expect_body 'cart array' "an item no concurrent request touched"

# --- A PHP page that fails keeps none of its changes.
for then in fatal throw; do
  get "/session?set[n]=changed&unset[]=cart&then=$then" -g
  [ "$STATUS" = 500 ] || [ "$STATUS" = 502 ] || fail "then=$then: status $STATUS, expected 500 or 502"
  php /session
  expect_line 'n int 5' "n after a failing page (then=$then)"
  expect_body '^cart array' "cart after a failing page (then=$then)"
done

# --- A session of 60 KB: HTTP_SESSION alone nearly fills a FastCGI record
# (php-fpm reads each parameter from one record of at most 64 KiB), and with
# SESSION_VAR_big1 and _big2 the parameters take two records or more.
php "/session?big[big1]=30000&big[big2]=30000"
php /session
expect_line "big2 string \"$(head -c 30000 /dev/zero | tr '\0' v)\"" "a 60 KB session, read back in PHP"

# --- Logout abandons the session.
get /logout
expect_status 303 "logout"
expect_eq "$(header Location)" "/login" "logout redirect"
get /home
expect_body "Anonymous User" "home after logout"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after logout"

# --- make run-php (scripts/demo --php): serves the PHP pages, and Ctrl-C
# stops php-fpm, sessiond and nginx.
DEMO="$DIR/demo"
mkdir -p "$DEMO"
DEMO_PORT=$(stack_random_port) || fail "no free port"
# A background job starts with SIGINT ignored: give it back, as a terminal's Ctrl-C reaches it.
DEMO_DIR=$DEMO PORT=$DEMO_PORT env --default-signal=INT "$SESSIOND_SRC/scripts/demo" --php "$SESSIOND" \
  >"$DIR/demo.out" 2>"$DIR/demo.err" &
DEMO_PID=$!
STACK_PIDS="$STACK_PIDS $DEMO_PID"
# The banner's last line names sessiond's pid.
stack_wait_for "$DEMO_PID" grep -q "^  sessiond pid [0-9]" "$DIR/demo.out" ||
  fail "make run-php printed no banner: $(cat "$DIR/demo.out" "$DIR/demo.err" "$DEMO"/*.log 2>/dev/null | tail -n 30)"
grep -q "^sessiond demo: http://127.0.0.1:$DEMO_PORT/" "$DIR/demo.out" &&
  grep -q "php-fpm pid [0-9]" "$DIR/demo.out" || fail "make run-php's banner: $(cat "$DIR/demo.out")"
FPM_DEMO=$(cat "$DEMO/php.pid")
STACK_PORT=$DEMO_PORT
rm -f "$JAR"
login ann
get /home
expect_body "Hello, <b>ann</b>" "home of make run-php after a login"
grep -q ' "GET /home HTTP' "$DEMO/nginx-access.log" || fail "the demo's nginx did not serve /home"
expect_eq "$(sqlite3 "$DEMO/sessions.db" "SELECT value FROM items WHERE key = 'UserName'")" ann "the demo's store"
kill -INT "$DEMO_PID"
wait_exit "$DEMO_PID" || fail "make run-php did not exit 0 on SIGINT: $(cat "$DIR/demo.err")"
! kill -0 "$FPM_DEMO" 2>/dev/null || fail "the demo's php-fpm ($FPM_DEMO) still runs after SIGINT"
[ ! -e "$DEMO/php.sock" ] || fail "the demo's php-fpm left its socket behind"
exit 0
