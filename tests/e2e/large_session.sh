#!/bin/bash
# No session can lock its visitor out. Linux refuses any one environment
# string of 128 KiB or more, and the default limits let a session hold three
# 60 kB values: such a visitor is still served, can log out, and every page
# still receives the whole session (HTTP_SESSION's text in the file named by
# SESSION_FILE, on fd 3; each SESSION_VAR_ as usual). A small session still
# comes as HTTP_SESSION, with no SESSION_FILE and no fd 3. (That a page has
# no other fd is isolation.sh's.)
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a

# A small session: HTTP_SESSION, nothing else.
get "/set?small=x%20y"
expect_status 200 "first write"
get /session
expect_status 200 "small session"
expect_body "^HTTP_SESSION=small=x%20y$" "small session"
expect_body "^SESSION_FILE=<unset>$" "small session"
get /fds
expect_status 200 "fds of a page of a small session"
! grep -qx 3 "$DIR/body" || fail "a page of a small session has an fd 3"

# Three values of 60 kB, stored out of order.
value() { head -c 60000 /dev/zero | tr '\0' "$1"; }
for kv in zeta:z alpha:a mid:m; do
  value "${kv#*:}" >"$DIR/value"
  post "/store_body?key=${kv%%:*}" --data-binary "@$DIR/value"
  expect_status 200 "storing 60 kB as ${kv%%:*}"
done
expect_eq "$(sql "SELECT sum(length(value)) FROM items")" 180003 "bytes stored"

# Every later request is served, and its page gets the whole session.
get /session
expect_status 200 "a page of a 180 kB session"
expect_body "^HTTP_SESSION=<unset>$" "HTTP_SESSION of a 180 kB session"
expect_body "^SESSION_FILE=/dev/fd/3$" "SESSION_FILE of a 180 kB session"
# Exactly what HTTP_SESSION would have been: percent-encoded, keys in order.
printf 'alpha=%s&mid=%s&small=x%%20y&zeta=%s\n' "$(value a)" "$(value m)" "$(value z)" >"$DIR/want"
sed -n 's/^FILE=//p' "$DIR/body" >"$DIR/got"
cmp -s "$DIR/want" "$DIR/got" ||
  fail "content of SESSION_FILE: $(wc -c <"$DIR/got") bytes, '$(head -c 40 "$DIR/got")...', expected $(wc -c <"$DIR/want")"
for kv in zeta:z alpha:a mid:m; do
  grep -qx "SESSION_VAR_${kv%%:*}=$(value "${kv#*:}")" "$DIR/body" ||
    fail "SESSION_VAR_${kv%%:*} of a 180 kB session is not the value stored"
done
expect_body "^SESSION_VAR_small=x y$" "SESSION_VAR_small of a 180 kB session"
get /fds
expect_status 200 "fds of a page of a 180 kB session"
grep -qx 3 "$DIR/body" || fail "a page of a 180 kB session has no fd 3: fds $(sort -n "$DIR/body" | tr '\n' ' ')"
get /home
expect_status 200 "home with a 180 kB session"
get "/set?another=1"
expect_status 200 "a write to a 180 kB session"

# Logging out works and deletes it.
get /logout
expect_status 303 "logout of a 180 kB session"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after the logout"
expect_eq "$(sql 'SELECT count(*) FROM items')" 0 "items after the logout"
