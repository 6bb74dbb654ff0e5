#!/bin/bash
# A PHP session of 200 KiB through real nginx -> sessiond -> php-fpm (a stock
# pool of 5): an item at the bridge's value limit (64 KiB), two of 35 kB and
# 60 kB of non-ASCII text (180 kB once percent-encoded). php-fpm reads a
# FastCGI parameter only from within one record (64 KiB), so sessiond sends a
# session that does not fit one as numbered chunks (SESSION_CHUNKS) and the
# bridge puts them together: every request of the session is served (read,
# write, regenerate, logout), and a write past --max-session-bytes is refused
# for that request alone (413, the session as it was), at the limit and one
# byte past it. With the default limits, a session of 1 MiB of non-ASCII
# text (3 MiB once percent-encoded) is read, written again whole, and logged
# out.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www "$SESSIOND_SRC"/sample_php
stack_php_fpm php "pm.max_children = 5" || fail "php-fpm did not start"
stack_php_location "$WWW" php
# 204,800 bytes of keys and values below, plus "edge" (4) and 1,000 bytes.
LIMIT=205804
# Without a rotation grace, so the id from before a regenerate dies at once.
restart --app "php=unix:$DIR/php.sock" --max-session-bytes "$LIMIT" --regenerate-grace 0
start_nginx a

# md5 CHAR N: the md5 of N bytes of CHAR repeated (CHAR of 1 or 2 bytes).
md5() { python3 -c 'import sys,hashlib; c=sys.argv[1].encode(); print(hashlib.md5(c*(int(sys.argv[2])//len(c))).hexdigest())' "$1" "$2"; }
# large QUERY: large.php through sessiond, which must answer 200.
large() { get "/large?$1" -g; expect_status 200 "large?$1"; }
expect_line() { grep -qxF -- "$1" "$DIR/body" || fail "$2: no line '$1' in: $(body | cut -c1-100 | head -n 12)"; }
# expect_items WHAT: the page saw exactly the items stored so far.
ITEMS=()
expect_items() {
  local item
  for item in "${ITEMS[@]}"; do expect_line "$item" "$1"; done
  expect_eq "$(grep -c '^[A-Za-z0-9]* [0-9]* [0-9a-f]*$' "$DIR/body")" "${#ITEMS[@]}" "$1: items seen"
}
stored_bytes() { sql "SELECT sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM items"; }

login ann
ITEMS+=("UserName 3 $(printf ann | md5sum | cut -d' ' -f1)")
# Each write below is one request of a session that grows past one record.
large "fill[a]=65536"
ITEMS+=("a 65536 $(md5 a 65536)")
large "text[t]=60000"
expect_items "after a 64 KiB item"
ITEMS+=("t 60000 $(md5 é 60000)")
large "fill[b]=35000"
ITEMS+=("b 35000 $(md5 b 35000)")
large "fill[c]=35000"
ITEMS+=("c 35000 $(md5 c 35000)")
large "text[d]=9248"
ITEMS+=("d 9248 $(md5 é 9248)")
expect_eq "$(stored_bytes)" 204800 "bytes stored"

# --- Read: every item whole, and the session came in chunks.
large ""
expect_items "a 200 KiB session"
grep -qx 'chunks [0-9]*' "$DIR/body" || fail "a 200 KiB session did not come in chunks: $(head -n 1 "$DIR/body")"
get /home
expect_status 200 "home of a 200 KiB session"
expect_body "Hello, <b>ann</b>" "home of a 200 KiB session"

# --- Write: exactly at --max-session-bytes, then one byte past it.
large "fill[edge]=1000"
ITEMS+=("edge 1000 $(md5 e 1000)")
expect_eq "$(stored_bytes)" "$LIMIT" "bytes stored at the limit"
large ""
expect_items "a session at --max-session-bytes"
get "/large?fill[edge]=1001" -g
expect_status 413 "a write one byte past --max-session-bytes"
grep -q "exceeds max_session_bytes" "$DIR/a.log" || fail "no log line for the refused write"
expect_eq "$(stored_bytes)" "$LIMIT" "bytes stored after the refused write"
large ""
expect_items "the request after the refused write"
# The bridge's own value limit: one byte past it is PHP's 500, nothing stored.
get "/large?fill[a]=65537" -g
expect_status 500 "a value one byte past the bridge's limit"
large ""
expect_items "the request after the refused value"

# --- Regenerate: a new id, the same data, the old id dead.
before=$(cookie)
large "regenerate=1"
after=$(cookie)
[ -n "$after" ] && [ "$after" != "$before" ] || fail "regenerate kept the id"
large ""
expect_items "after regenerate"
get_cookie "sid=$before" /home
expect_body "Anonymous User" "the id from before regenerate"

# --- Logout (sample_php's, which abandons) deletes it all.
get /logout
expect_status 303 "logout of a 200 KiB session"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after logout"
expect_eq "$(sql 'SELECT count(*) FROM items')" 0 "items after logout"

# --- --max-session-bytes' default, 1 MiB, all of it non-ASCII: 16 values of
# up to 64 KiB, the last 48 bytes short so that with the keys it is exactly
# the limit.
restart --app "php=unix:$DIR/php.sock"
rm -f "$JAR"
ITEMS=()
for i in $(seq -w 1 16); do
  n=65536
  [ "$i" = 16 ] && n=$((65536 - 48))
  large "text[t$i]=$n"
  ITEMS+=("t$i $n $(md5 é "$n")")
done
expect_eq "$(stored_bytes)" 1048576 "bytes stored"
get "/large?fill[x]=1" -g
expect_status 413 "one byte past the default --max-session-bytes"
large "rewrite=1"
expect_items "a 1 MiB session"
expect_eq "$(stored_bytes)" 1048576 "bytes stored after writing it all again"
large ""
expect_items "a 1 MiB session written again"
get /logout
expect_status 303 "logout of a 1 MiB session"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after the logout of 1 MiB"
exit 0
