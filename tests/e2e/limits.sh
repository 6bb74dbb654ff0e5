#!/bin/bash
# Oversized cookie header, key, value, session and body: a clear status, one
# log line, and the stored session exactly as it was.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --max-cookie-bytes 1KiB --max-key-bytes 8 --max-value-bytes 100 \
  --max-items 3 --max-session-bytes 200 --max-body-bytes 1000
start_nginx a

get "/set?a=1"
expect_status 200 "first write"
unchanged() {
  get /dump
  expect_status 200 "read after $1"
  expect_body "^HTTP_SESSION=a=1$" "session after $1"
}

get_cookie "sid=$(cookie); padding=$(head -c 2000 /dev/zero | tr '\0' p)" /dump
expect_status 400 "Cookie header over max-cookie-bytes"
grep -q "exceeds max_cookie_bytes" "$DIR/a.log" || fail "no log line for the cookie header"

get "/set?toolongkey=1"
expect_status 413 "key over max-key-bytes"
unchanged "a key over the limit"
get "/set?a=$(head -c 101 /dev/zero | tr '\0' v)"
expect_status 413 "value over max-value-bytes"
unchanged "a value over the limit"
get "/set?b=1&c=1&d=1"
expect_status 413 "items over max-items"
unchanged "too many items"
get "/set?b=$(head -c 99 /dev/zero | tr '\0' v)&c=$(head -c 99 /dev/zero | tr '\0' v)"
expect_status 413 "session over max-session-bytes"
unchanged "a session over the limit"
grep -q "exceeds max_items" "$DIR/a.log" || fail "no log line for max_items"

post /echo --data-binary "$(head -c 1001 /dev/zero | tr '\0' x)"
expect_status 413 "body over max-body-bytes"
post /echo --data-binary "$(head -c 1000 /dev/zero | tr '\0' x)"
expect_status 200 "body at max-body-bytes"

# A new visitor over a limit gets no session at all.
get_cookie "" "/set?w=1&x=1&y=1&z=1"
expect_status 413 "new visitor over max-items"
[ -z "$(header Set-Cookie)" ] || fail "a refused new visitor got a cookie"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions after refused writes"
