#!/bin/bash
# sessiond behind Apache httpd instead of nginx: mod_proxy_fcgi set up with
# apache/sessiond.conf, the SetHandler form php-fpm users write, which sends
# SCRIPT_FILENAME=proxy:fcgi://localhost//path/to/page. The seed demo (login,
# home, a restart of sessiond, logout); a sessiond that was down is used
# again at once; PATH_INFO as Apache splits it; two Cookie headers (which
# Apache joins with ", "); log lines naming the whole path; static files
# served by Apache from sample_static/, never a page's source; the status
# location of the snippet; a JSON item read and stored by sh and Python
# pages; then all of it over TCP.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
command -v apache2 >/dev/null || fail "apache2 is not installed (scripts/install-deps installs it)"
start_sessiond a
A=$STACK_PID
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"

# --- The seed demo ------------------------------------------------------------
get /home
expect_status 200 "anonymous home"
expect_body "Anonymous User" "anonymous home"
[ -z "$(header Set-Cookie)" ] || fail "anonymous home set a cookie"
get /login
expect_status 200 "login form"
expect_body 'name="UserName"' "login form"
login "Ann+%3Cscript%3E"
expect_eq "$(header Location)" "/home" "login redirect"
get /home
expect_status 200 "home after login"
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after login"

# The page sees its own path, not Apache's proxy URL.
get /dump
expect_status 200 "/dump"
expect_body "^SCRIPT_FILENAME=$(realpath "$PAGES")/dump$" "/dump"

# A JSON item through Apache: the sh counter reads and stores a JSON number,
# and a Python page reads its type (docs/pages.md, Values and their types).
get "/set_json?visits=3"
expect_status 200 "a JSON item through Apache"
get /typed_count
expect_body "^visits=4 type=json$" "the sh counter through Apache"
get /typed_count_py
expect_body "^visits=5$" "the Python counter through Apache"

# A browser that sends its cookies in two headers: Apache passes them on as
# one, joined with ", ".
_curl /home -H "Cookie: theme=dark" -H "Cookie: sid=$(cookie)"
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home with two Cookie headers"

# A restart of sessiond. While it is down Apache answers 503; once it is
# back, the next request is served (Apache does not bench the backend).
stack_kill TERM "$A" || fail "sessiond did not exit 0 on SIGTERM"
get /home
expect_status 503 "home while sessiond is down"
start_sessiond a
A=$STACK_PID
get /home
expect_status 200 "home after a restart of sessiond"
expect_body "Hello, <b>Ann &lt;script&gt;</b>" "home after a restart of sessiond"

get /logout
expect_status 303 "logout"
expect_eq "$(header Location)" "/login" "logout redirect"
get /home
expect_body "Anonymous User" "home after logout"

# A chunked request body: Apache hands sessiond the whole body with its length.
post /login --data "UserName=Chunk" -H "Transfer-Encoding: chunked"
expect_status 303 "chunked login"
get /home
expect_body "Hello, <b>Chunk</b>" "home after a chunked login"

# --- PATH_INFO: Apache splits it off and sends SCRIPT_FILENAME without it ----
get /pathinfo
expect_status 200 "/pathinfo"
expect_body "^SCRIPT_NAME=/pathinfo$" "/pathinfo"
expect_body "^PATH_INFO=$" "/pathinfo"
get "/pathinfo/extra/path?q=1"
expect_status 200 "/pathinfo/extra/path"
expect_body "^SCRIPT_NAME=/pathinfo$" "/pathinfo/extra/path"
expect_body "^PATH_INFO=/extra/path$" "/pathinfo/extra/path"
expect_body "^SCRIPT_FILENAME=$(realpath "$PAGES")/pathinfo$" "/pathinfo/extra/path"
get /nope/extra
expect_status 404 "/nope/extra"
# The log names the whole path, as nginx's DOCUMENT_URI would (Apache sends
# none, and its SCRIPT_NAME is /nope).
grep -q "404 GET /nope/extra: " "$DIR/a.log" || fail "the log does not name /nope/extra"
get /plain.txt/extra
expect_status 404 "/plain.txt/extra"

# --- Static files: Apache's, from sample_static/ -----------------------------
expect_static_files
# A file of the pages directory is never sent as it is: not a page's
# source, not a file that is no page.
get /plain.txt
expect_status 404 "/plain.txt, a file of the pages directory that is no page"
pages_name=$(basename "$PAGES")
for path in /static/login /static/../login "/static/%2e%2e/login" "/static/..%2flogin" \
    /static../login "/static..%2flogin" "/static/../$pages_name/login" \
    "/static/%2e%2e/$pages_name/login" "/static../$pages_name/login" /favicon.ico/../login \
    /sample_pages/login "/$pages_name/login" /login.txt /login~ /login/ "/login%00.txt" \
    /static/home /static/logout; do
  get "$path" --path-as-is
  ! grep -q '#!/bin/sh' "$DIR/body" || fail "$path: status $STATUS, a page's source: $(body | head -c 200)"
done

# --- Metrics through the status location of apache/sessiond.conf ------------
# Uncommented as an operator would: answered there (SetEnv SESSIOND_STATUS),
# 403 from another address; without that location a 404, whatever header
# the client sends.
stack_kill TERM "$STACK_APACHE_PID" || fail "apache did not stop cleanly"
stack_kill TERM "$A" || fail "sessiond did not exit 0 on SIGTERM"
start_sessiond a --status-path /sessiond-status
A=$STACK_PID
sed -n '/^#<Location "\/sessiond-status">/,/^#<\/Location>/ s/^#//p' "$SESSIOND_SRC/apache/sessiond.conf" \
  >"$DIR/apache-extra-status.conf"
grep -q "SetEnv SESSIOND_STATUS 1" "$DIR/apache-extra-status.conf" ||
  fail "apache/sessiond.conf has no commented status location: $(cat "$DIR/apache-extra-status.conf")"
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start with the status location"
get /sessiond-status
expect_status 200 "the status location"
expect_body "^sessiond_workers_max 16" "the status location"
get /sessiond-status --interface 127.0.0.2
expect_status 403 "the status location from 127.0.0.2"
stack_kill TERM "$STACK_APACHE_PID" || fail "apache did not stop cleanly"
rm "$DIR/apache-extra-status.conf"
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
get /sessiond-status -H "SESSIOND_STATUS: 1"
expect_status 404 "the status path without its location"
expect_no_body "sessiond_" "the status path without its location"

# --- The same over TCP: SetHandler "proxy:fcgi://127.0.0.1:PORT/" ----------
stack_kill TERM "$STACK_APACHE_PID" || fail "apache did not stop cleanly"
stack_kill TERM "$A" || fail "sessiond did not exit 0 on SIGTERM"
for try in 1 2 3 4 5 6 7 8 9 10; do
  port=$(stack_random_port)
  : >"$DIR/b.log"
  # shellcheck disable=SC2086
  "$SESSIOND" serve --listen "127.0.0.1:$port" $AS_ROOT --db "$DB" --pages "$PAGES" >>"$DIR/b.log" 2>&1 &
  B=$!
  STACK_PIDS="$STACK_PIDS $B"
  stack_wait_for "$B" grep -q "^sessiond: serving" "$DIR/b.log" && break
  ! kill -0 "$B" 2>/dev/null || fail "sessiond on TCP did not start in time"
  wait "$B"
  grep -q "in use" "$DIR/b.log" || fail "sessiond on TCP did not start"
done
grep -q "^sessiond: serving" "$DIR/b.log" || fail "no free port for sessiond on TCP"
stack_apache "$PAGES" "127.0.0.1:$port" || fail "apache did not start in front of TCP"
get /home
expect_status 200 "home over TCP"
expect_body "Hello, <b>Chunk</b>" "home over TCP"
login "Tcp"
get /home
expect_body "Hello, <b>Tcp</b>" "home after a login over TCP"
get /pathinfo/x
expect_body "^PATH_INFO=/x$" "/pathinfo/x over TCP"
get /static/style.css
expect_status 200 "stylesheet with sessiond on TCP"
