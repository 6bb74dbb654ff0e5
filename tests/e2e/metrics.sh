#!/bin/bash
# --status-path through real nginx, with the status location of
# nginx/sessiond.conf as an operator would uncomment it: the scrape is
# Prometheus text, and between two scrapes every counter moves by exactly
# what the requests in between did (the scrapes themselves count for
# nothing); the sweep's deletions are counted; only allowed addresses reach
# it; through a location that does not set SESSIOND_STATUS (nginx's
# location /, a client's header posing as it) the path is a 404; and without
# --status-path the path is an ordinary page path (404).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
STATUS_PATH=/sessiond-status

# The documented location, uncommented, is the one nginx gets.
sed -n '/^#location = \/sessiond-status {/,/^#}/ s/^#//p' "$SESSIOND_SRC/nginx/sessiond.conf" >"$DIR/nginx-extra-status.conf"
grep -q "fastcgi_pass sessiond;" "$DIR/nginx-extra-status.conf" ||
  fail "nginx/sessiond.conf has no commented status location: $(cat "$DIR/nginx-extra-status.conf")"
grep -q "fastcgi_param SESSIOND_STATUS 1;" "$DIR/nginx-extra-status.conf" ||
  fail "the status location of nginx/sessiond.conf sets no SESSIOND_STATUS: $(cat "$DIR/nginx-extra-status.conf")"

# scrape NAME: the metrics, into $DIR/NAME.prom.
scrape() {
  curl -s -D "$DIR/$1.headers" -o "$DIR/$1.prom" -w '%{http_code}' --max-time 30 "$(BASE)$STATUS_PATH" >"$DIR/$1.status" ||
    fail "scrape $1: curl failed"
  expect_eq "$(cat "$DIR/$1.status")" 200 "status of scrape $1"
  grep -qi '^Content-Type: text/plain; version=0.0.4' "$DIR/$1.headers" ||
    fail "scrape $1: not Prometheus text: $(cat "$DIR/$1.headers")"
}
# value NAME SERIES: the value of a series (name and labels exactly as
# exposed) in scrape NAME; 0 when it is absent (a status not seen yet).
value() {
  awk -v s="$2" '$1 == s { v = $2; found = 1 } END { print found ? v + 0 : 0 }' "$DIR/$1.prom"
}
# moved SERIES WANT: the series moved by exactly WANT from scrape "before"
# to scrape "after".
moved() {
  local b a
  b=$(value before "$1")
  a=$(value after "$1")
  [ "$(awk -v a="$a" -v b="$b" 'BEGIN { print a - b }')" = "$2" ] ||
    fail "$1 moved from $b to $a, expected +$2 (requests: $(grep '^sessiond_requests_total' "$DIR/after.prom" | tr '\n' ' '))"
}

start_sessiond a --status-path "$STATUS_PATH" --gc-interval 1h
start_nginx a

scrape before
expect_eq "$(value before sessiond_workers_max)" 16 "sessiond_workers_max (default --workers)"
expect_eq "$(value before sessiond_queue_max)" 64 "sessiond_queue_max (default --queue-size)"

# --- Exactly these requests, one at a time:
get /set?cart=1                       # 200, a new session: created
expect_status 200 "a first write"
login ann                             # 303, the same session, new id: regenerated
get /no-such-page                     # 404, no page run, no load
expect_status 404 "a missing page"
get /fail                             # 502, the page ran and failed: no commit
expect_status 502 "a failing page"
get /logout                           # 303: abandoned
expect_status 303 "the logout"
# A session that expired while its visitor was away (its row still there):
# its cookie finds it expired on read.
get_cookie "" /set?other=1            # 200: created
expect_status 200 "another visitor's first write"
OTHER=$(cookie sid "$DIR/other-jar")
[ -n "$OTHER" ] || fail "no cookie for the other visitor"
sql "UPDATE sessions SET expires = 0 WHERE id_hash = sha3('$OTHER', 256)"
get_cookie "sid=$OTHER" /home         # 200: expired on read, nothing stored
expect_status 200 "home with an expired session"
expect_body "Anonymous User" "home with an expired session"
get_cookie "" /set?third=1            # 200: created, and alive at the scrape
expect_status 200 "a third visitor's first write"
scrape after

# --- The text: every metric of the README is there, with its type.
for m in sessiond_requests_total sessiond_page_duration_seconds sessiond_store_load_duration_seconds \
         sessiond_store_commit_duration_seconds sessiond_store_errors_total sessiond_sessions_created_total \
         sessiond_sessions_regenerated_total sessiond_sessions_abandoned_total sessiond_sessions_expired_total \
         sessiond_pages_running sessiond_workers_busy sessiond_workers_max sessiond_queue_length \
         sessiond_queue_max sessiond_sessions_live sessiond_start_time_seconds; do
  grep -q "^# TYPE $m " "$DIR/after.prom" || fail "no metric $m in the scrape: $(cat "$DIR/after.prom")"
done

moved 'sessiond_requests_total{status="200"}' 4
moved 'sessiond_requests_total{status="303"}' 2
moved 'sessiond_requests_total{status="404"}' 1
moved 'sessiond_requests_total{status="502"}' 1
moved 'sessiond_sessions_created_total' 3
moved 'sessiond_sessions_regenerated_total' 1
moved 'sessiond_sessions_abandoned_total' 1
moved 'sessiond_sessions_expired_total{found_by="read"}' 1
moved 'sessiond_sessions_expired_total{found_by="gc"}' 0
moved 'sessiond_store_errors_total{kind="busy"}' 0
moved 'sessiond_store_errors_total{kind="failed"}' 0
# Pages run: set, login, fail, logout, set, home, set (the 404 runs none).
moved 'sessiond_page_duration_seconds_count' 7
# Loads: one per request with a well-formed cookie that reached the store
# (login, fail, logout, the expired one; the 404 stops before).
moved 'sessiond_store_load_duration_seconds_count' 4
# Commits that wrote: three creations, the login, the logout.
moved 'sessiond_store_commit_duration_seconds_count' 5
# The histograms' +Inf buckets are their counts.
expect_eq "$(value after 'sessiond_page_duration_seconds_bucket{le="+Inf"}')" \
          "$(value after sessiond_page_duration_seconds_count)" "the page histogram's +Inf bucket"
# The live count is taken at most once every 5 s: scrape until it is taken
# anew (the scrapes count for nothing above, so "after" may be any of them).
counted() { scrape after && [ "$(value after sessiond_sessions_live)" = 1 ]; }
stack_wait_for "$STACK_PID" counted ||
  fail "sessiond_sessions_live is $(value after sessiond_sessions_live), expected 1: only the third visitor's"
expect_eq "$(value after sessiond_sessions_live)" \
          "$(sql "SELECT count(*) FROM sessions WHERE expires > strftime('%s', 'now')")" "sessiond_sessions_live"
expect_eq "$(value after sessiond_pages_running)" 0 "sessiond_pages_running between requests"
expect_eq "$(value after sessiond_queue_length)" 0 "sessiond_queue_length between requests"
[ "$(value after sessiond_workers_busy)" -ge 1 ] || fail "sessiond_workers_busy does not count the scrape's own worker"

# --- Only what the location allows: nginx refuses another address.
DENIED=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --interface 127.0.0.2 "$(BASE)$STATUS_PATH")
expect_eq "$DENIED" 403 "the status path from 127.0.0.2"

# --- The sweep's deletions: a sessiond that sweeps every second deletes the
# expired session, and counts it.
stack_kill TERM "$STACK_PID" || fail "sessiond did not stop cleanly"
start_sessiond a --status-path "$STATUS_PATH" --gc-interval 1
collected() { scrape gc && [ "$(value gc 'sessiond_sessions_expired_total{found_by="gc"}')" = 1 ]; }
stack_wait_for "$STACK_PID" collected || fail "the sweep's deletion was not counted: $(cat "$DIR/gc.prom")"
expect_eq "$(sql "SELECT count(*) FROM sessions WHERE expires <= strftime('%s', 'now')")" 0 "expired sessions left"

# --- Through a location that sets no SESSIOND_STATUS (an nginx with only the
# catch-all location /), even with a client's header posing as it: 404,
# neither the metrics nor a page, and a log line saying what is missing.
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop cleanly"
rm "$DIR/nginx-extra-status.conf"
start_nginx a
get_cookie "" "$STATUS_PATH" -H "SESSIOND_STATUS: 1"
expect_status 404 "$STATUS_PATH through location / with a client's SESSIOND_STATUS header"
expect_no_body "sessiond_" "$STATUS_PATH through location /"
grep -q "404 GET $STATUS_PATH: the status path was asked through a location that does not set SESSIOND_STATUS" \
  "$DIR/a.log" || fail "no log line for the status path through location /: $(tail -n 5 "$DIR/a.log")"

# --- Without --status-path, the path is a page path like any other: 404.
stack_kill TERM "$STACK_PID" || fail "sessiond did not stop cleanly"
start_sessiond a
get "$STATUS_PATH"
expect_status 404 "$STATUS_PATH without --status-path"
expect_no_body "sessiond_" "$STATUS_PATH without --status-path"
grep -q "404 GET $STATUS_PATH: no page" "$DIR/a.log" ||
  fail "no log line for the 404 of $STATUS_PATH: $(tail -n 5 "$DIR/a.log")"
exit 0
