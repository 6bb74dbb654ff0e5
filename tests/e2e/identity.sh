#!/bin/bash
# Ids: 256-bit, URL-safe, stored only as a digest; a login regenerates the id
# and the old one dies; never-issued, expired, abandoned and malformed ids are
# never adopted; the cookie has its attributes. Without a rotation grace
# here, so the old id dies at once (with one: grace.sh).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --regenerate-grace 0
start_nginx a

get "/set?cart=3"
expect_status 200 "first write"
set_cookie=$(header Set-Cookie)
first=$(cookie)
[[ "$first" =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "id '$first' is not 43 URL-safe characters"
[[ "$set_cookie" == "sid=$first; Path=/; HttpOnly; SameSite=Lax" ]] || fail "Set-Cookie: $set_cookie"
expect_eq "$(header Cache-Control)" "no-store" "Cache-Control of a response that sets the cookie"

# The file holds a digest, never the id.
expect_eq "$(sql "SELECT count(*) FROM sessions WHERE id_hash = sha3('$first', 256)")" 1 "row by digest"
for f in "$DB" "$DB-wal"; do
  [ -e "$f" ] && grep -qa -- "$first" "$f" && fail "$f holds the id in clear"
done

# A login is a privilege change: a new id, the same data, and the old id dead.
login Bob
second=$(cookie)
[ -n "$second" ] && [ "$second" != "$first" ] || fail "login did not regenerate the id"
get /dump
expect_body "SESSION_VAR_cart=3" "data kept across regeneration"
expect_body "SESSION_VAR_UserName=Bob" "login stored"
get_cookie "sid=$first" /dump
expect_body "SESSION_NEW=1" "old id after regeneration"
expect_no_body "Bob" "old id after regeneration"

# Never issued: well-formed, but unknown. Not adopted; a write gets a fresh id.
forged=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-43)
get_cookie "sid=$forged" "/set?x=1"
fresh=$(cookie sid "$DIR/other-jar")
[ -n "$fresh" ] && [ "$fresh" != "$forged" ] || fail "a never-issued id was adopted"
expect_eq "$(sql "SELECT count(*) FROM sessions WHERE id_hash = sha3('$forged', 256)")" 0 "forged id stored"

# Expired (past the absolute timeout): never served, never revived.
sql "UPDATE sessions SET created = created - 90000 WHERE id_hash = sha3('$fresh', 256)"
get_cookie "sid=$fresh" /dump
expect_body "SESSION_NEW=1" "id past the absolute timeout"
expect_no_body "SESSION_VAR_x" "id past the absolute timeout"

# Abandoned: the cookie is expired and the id is dead.
get /logout
expect_status 303 "logout"
[[ "$(header Set-Cookie)" == "sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0;"* ]] ||
  fail "logout Set-Cookie: $(header Set-Cookie)"
expect_eq "$(sql "SELECT count(*) FROM sessions WHERE id_hash = sha3('$second', 256)")" 0 "abandoned row"
# The same logout again (another tab still has the cookie): no session, and
# the browser is still told to drop its cookie.
get_cookie "sid=$second" /logout
expect_status 303 "logout with a dead id"
[[ "$(header Set-Cookie)" == "sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0;"* ]] ||
  fail "logout with a dead id: Set-Cookie: $(header Set-Cookie)"
get_cookie "sid=$second" /dump
expect_body "SESSION_NEW=1" "abandoned id"

# Malformed values are no session, never an error page.
for bad in "../../etc/passwd" "$(printf 'A%.0s' {1..5000})" "$first!" '"quoted"' ""; do
  get_cookie "sid=$bad" /dump
  expect_status 200 "malformed cookie"
  expect_body "SESSION_NEW=1" "malformed cookie"
done
# Other cookies are left alone and do not confuse the lookup.
get_cookie "" "/set?y=2"
mine=$(cookie sid "$DIR/other-jar")
get_cookie "theme=dark; xsid=$first; sid=$mine; other=1" /dump
expect_body "SESSION_VAR_y=2" "session among other cookies"
