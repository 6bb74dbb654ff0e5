#!/bin/bash
# The injected session cannot be forged by a client; session headers never
# reach the client; every session header does what the contract says.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
SESSIOND_TEST_SECRET=sessiond-own-environment start_sessiond a
start_nginx a

# A client's "Session:" header arrives as HTTP_SESSION; "Proxy:" as HTTP_PROXY.
get /home -H "Session: UserName=admin" -H "Proxy: http://127.0.0.1:9/" -H "Session-Id: x"
expect_body "Anonymous User" "home with a forged Session header"
get /dump -H "Session: UserName=admin" -H "Proxy: http://127.0.0.1:9/"
expect_body "^HTTP_SESSION=$" "HTTP_SESSION with a forged Session header"
expect_no_body "admin" "forged Session header"
expect_no_body "HTTP_PROXY" "Proxy header (httpoxy)"
expect_no_body "SESSIOND_TEST_SECRET" "sessiond's own environment"
expect_body "^PATH=/usr/local/bin:/usr/bin:/bin$" "PATH"
expect_eq "$(header Cache-Control)" "" "Cache-Control without a session"

# Session headers are consumed, never sent on.
login Eve
grep -qi "^X-Session\|^X-Replace-Session" "$DIR/headers" && fail "login response carries session headers"
get "/set?a=1&b=2&c=3"
grep -qi "^X-Session" "$DIR/headers" && fail "set response carries session headers"
expect_eq "$(header Cache-Control)" "no-store" "Cache-Control with a session"

# Values are bytes, percent-encoded in HTTP_SESSION, raw in SESSION_VAR_*.
get "/set?msg=a%20b%26c%3Dd%0Ae&my-key=1&caf%C3%A9=x"
get /dump
expect_body "^HTTP_SESSION=.*msg=a%20b%26c%3Dd%0Ae" "HTTP_SESSION encoding"
expect_body "my-key=1" "non-identifier key in HTTP_SESSION"
expect_body "caf%C3%A9=x" "UTF-8 key in HTTP_SESSION"
expect_no_body "SESSION_VAR_my" "non-identifier key as SESSION_VAR"
expect_body "^SESSION_VAR_msg=a b&c=d$" "SESSION_VAR raw value"
expect_body "^SESSION_NEW=0$" "SESSION_NEW"
expect_body "^SESSION_ID=$(cookie)$" "SESSION_ID"

get "/directive?X-Session-Remove=a"
get /dump
expect_no_body "SESSION_VAR_a=" "after X-Session-Remove"
expect_body "SESSION_VAR_b=2" "after X-Session-Remove"

get "/directive?X-Replace-Session=UserName=Eve&r=1"
get /dump
expect_body "^HTTP_SESSION=UserName=Eve&r=1$" "after X-Replace-Session"

id=$(cookie)
get "/directive?X-Session-Clear=1"
get /dump
expect_body "^HTTP_SESSION=$" "after X-Session-Clear"
expect_body "^SESSION_ID=$id$" "X-Session-Clear keeps the session"

get "/set?again=1"
get "/directive?X-Session-Regenerate=1"
[[ "$(header Set-Cookie)" == "sid=$(cookie);"* ]] || fail "regenerate Set-Cookie: $(header Set-Cookie)"
[ "$(cookie)" != "$id" ] || fail "X-Session-Regenerate kept the id"
get /dump
expect_body "SESSION_VAR_again=1" "after X-Session-Regenerate"

get "/directive?X-Session-Abandon=1"
[[ "$(header Set-Cookie)" == *"Max-Age=0"* ]] || fail "abandon Set-Cookie: $(header Set-Cookie)"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after X-Session-Abandon"
