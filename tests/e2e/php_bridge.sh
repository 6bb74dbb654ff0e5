#!/bin/bash
# The PHP bridge (php/sessiond.php) alone, in a real php-fpm talked to
# directly over FastCGI as sessiond talks to it: the session parameters go
# in, and the X-Session-* headers that come out are exactly the changes the
# page made (one per changed key, non-string values as JSON items), in every way a
# page can end: normally, by exit, with a late shutdown function, after an
# explicit commit and flush; and none at all when the page fails (fatal
# error, uncaught exception, a key or value that cannot be stored, a request
# that did not come through sessiond). PHP's own session_start() on such a
# page reads the session again, as PHP does (tests/e2e/php_native.sh has the rest
# of PHP's session API).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www
stack_php_fpm php || fail "php-fpm did not start"

# fpm [NAME=VALUE...]: one request for session.php, straight to php-fpm, with
# these parameters; leaves STATUS, the header lines in $DIR/h and the body in
# $DIR/b (CRs removed), PHP's messages in $DIR/err.
fpm() {
  python3 "$SESSIOND_SRC/tests/e2e/tools/fcgi_request.py" "unix:$DIR/php.sock" "$WWW/session.php" "$@" \
    >"$DIR/out" 2>"$DIR/err" || fail "no FastCGI answer from php-fpm: $(cat "$DIR/err")"
  tr -d '\r' <"$DIR/out" | sed '/^$/q' >"$DIR/h"
  tr -d '\r' <"$DIR/out" | sed '1,/^$/d' >"$DIR/b"
  STATUS=$(sed -n 's/^Status: \([0-9]*\).*/\1/p' "$DIR/h")
  STATUS=${STATUS:-200}
}
# A request as sessiond forwards it: SESSION_NEW, SESSION_ID, HTTP_SESSION.
new_visitor() { fpm SESSION_NEW=1 SESSION_ID= HTTP_SESSION= "$@"; }
visitor() { _s=$1; shift; fpm SESSION_NEW=0 SESSION_ID=id-of-the-test "HTTP_SESSION=$_s" "$@"; }
directives() { grep '^X-Session-' "$DIR/h" || true; }
expect_directives() {
  [ "$(directives)" = "$1" ] || fail "$2: directives
$(directives)
expected
$1
(stderr: $(head -c 600 "$DIR/err"))"
}
expect_status_of() { [ "$STATUS" = "$1" ] || fail "$2: status $STATUS, expected $1 ($(head -c 600 "$DIR/err"))"; }
expect_in_body() { grep -qxF -- "$1" "$DIR/b" || fail "$2: body lacks '$1': $(head -c 600 "$DIR/b")"; }
expect_err() { grep -qF -- "$1" "$DIR/err" || fail "$2: PHP did not say '$1': $(head -c 600 "$DIR/err")"; }

# --- Strings as they are (a string that begins with "json:" too), everything
# else as a JSON item (X-Session-Set-Json), in the order set.
new_visitor 'QUERY_STRING=set[UserName]=Ann%20%3C%26%3E&json[n]=5&json[f]=1.0&json[b]=true&json[z]=null&json[a]=%7B%22x%22%3A%5B1%2C%22y%22%5D%7D&set[j]=json:abc&set[e]='
expect_status_of 200 "new visitor's writes"
expect_directives 'X-Session-Set: UserName=Ann%20%3C%26%3E
X-Session-Set: j=json%3Aabc
X-Session-Set: e=
X-Session-Set-Json: n=5
X-Session-Set-Json: f=1.0
X-Session-Set-Json: b=true
X-Session-Set-Json: z=null
X-Session-Set-Json: a=%7B%22x%22%3A%5B1%2C%22y%22%5D%7D' "new visitor's writes"
expect_in_body "end of session" "new visitor's session"
! grep -q ' ' <(sed '/^end of session$/q' "$DIR/b" | sed '$d') || fail "a new visitor saw items: $(cat "$DIR/b")"

# --- What sessiond injects comes back as those values (SESSION_TYPES names
# the JSON items); unchanged keys send nothing. A string item that looks like
# JSON, or begins with "json:", stays a string.
SESSION='UserName=Ann%20%3C%26%3E&e=&j=json%3Aabc&n=5&f=1.0&b=true&z=null&a=%7B%22x%22%3A%5B1%2C%22y%22%5D%7D&odd=json%3A%7Bnot+json&plus=a+b%2Bc&s=5&q=%22json%3Ax%22'
TYPES='SESSION_TYPES=n&f&b&z&a&q'
visitor "$SESSION" "$TYPES" QUERY_STRING=
expect_directives '' "a read"
for line in 'UserName string "Ann <&>"' 'e string ""' 'j string "json:abc"' 'n int 5' 'f float 1.0' \
            'b bool true' 'z null null' 'a array {"x":[1,"y"]}' 'odd string "json:{not json"' 'plus string "a b+c"' \
            's string "5"' 'q string "json:x"'; do
  expect_in_body "$line" "values read back"
done

# --- Per-key changes only: a removal, a change, a new key, and regenerate last.
visitor "$SESSION" "$TYPES" 'QUERY_STRING=unset[]=n&unset[]=missing&set[a]=now%20text&json[f]=1.0&json[s]=5&json[new]=%5B%5D&regenerate=1'
expect_directives 'X-Session-Remove: n
X-Session-Set: a=now%20text
X-Session-Set-Json: s=5
X-Session-Set-Json: new=%5B%5D
X-Session-Regenerate: 1' "per-key changes"

# --- Abandon wins; clear writes the whole session after X-Session-Clear.
visitor "$SESSION" "$TYPES" 'QUERY_STRING=set[x]=1&abandon=1'
expect_directives 'X-Session-Abandon: 1' "abandon"
visitor 'a=1&b=2' 'QUERY_STRING=clear=1&after_clear[b]=2&after_clear[c]=3'
expect_directives 'X-Session-Clear: 1
X-Session-Set: b=2
X-Session-Set: c=3' "clear"

# --- However the page ends well, its changes go out with its headers.
new_visitor 'QUERY_STRING=set[x]=1&then=exit'
expect_directives 'X-Session-Set: x=1' "exit()"
new_visitor 'QUERY_STRING=set[x]=1&then=late'
expect_directives 'X-Session-Set: x=1
X-Session-Set: late=from%20shutdown' "a change in the page's own shutdown function"
new_visitor 'QUERY_STRING=set[x]=1&then=commit-flush'
expect_directives 'X-Session-Set: x=1' "sessiond_commit() then flush"
expect_err 'changed after sessiond_commit()' "a change after sessiond_commit()"
# Flushed without a commit: the changes cannot go out any more, and PHP says so.
new_visitor 'QUERY_STRING=set[x]=1&then=flush'
expect_status_of 200 "flush without a commit"
expect_directives '' "flush without a commit"
expect_err 'before the session was committed; its changes are not stored' "flush without a commit"

# --- A page that fails sends no change, and gets a 500.
for then in fatal throw; do
  new_visitor "QUERY_STRING=set[x]=1&then=$then"
  expect_status_of 500 "then=$then"
  expect_directives '' "then=$then"
done
# session_start() after changes to $_SESSION: $_SESSION is the stored
# session again, as in PHP, and the changes before it are not stored.
visitor 'a=1' 'QUERY_STRING=set[x]=1&then=session_start'
expect_status_of 200 "session_start() after a change"
expect_directives '' "session_start() after a change"
# What cannot be stored: 500, nothing sent, and the page's body withheld.
LONG=$(printf 'k%.0s' $(seq 257))
for q in emptykey=1 "set[$LONG]=1" 'json[x]=1e999' 'big[v]=65537'; do
  new_visitor "QUERY_STRING=set[fine]=1&$q"
  expect_status_of 500 "${q:0:40}"
  expect_directives '' "${q:0:40}"
  ! grep -q '^done$' "$DIR/b" || fail "${q:0:40}: the page's body went out with the 500"
done
new_visitor 'QUERY_STRING=emptykey=1'
expect_err 'a session key cannot be empty' "an empty key"
new_visitor "QUERY_STRING=set[$LONG]=1"
expect_err "is 257 bytes, over the limit of 256 (SESSIOND_MAX_KEY_BYTES)" "an over-long key"
new_visitor 'QUERY_STRING=big[v]=65537'
expect_err "is 65537 bytes stored, over the limit of 65536 (SESSIOND_MAX_VALUE_BYTES)" "an over-long value"
# 256 bytes is still a key, 64 KiB still a value.
new_visitor "QUERY_STRING=set[${LONG:1}]=1&big[v]=65536"
expect_directives "X-Session-Set: ${LONG:1}=1
X-Session-Set: v=$(head -c 65536 /dev/zero | tr '\0' v)" "a key of 256 bytes, a value of 64 KiB"

# --- A session too large for one FastCGI record comes in chunks, cut
# anywhere (here inside %C3%A9 and between key and value): joined in order,
# HTTP_SESSION ignored. A chunk missing is a 500, never a smaller session.
visitor 'ignored=1' SESSION_CHUNKS=3 'SESSION_CHUNK_1=t=caf%C' 'SESSION_CHUNK_2=3%A9&n=5&u' 'SESSION_CHUNK_3==x' \
  SESSION_TYPES=ignored SESSION_TYPES_CHUNKS=2 SESSION_TYPES_CHUNK_1=%6 SESSION_TYPES_CHUNK_2=E 'QUERY_STRING=set[u]=y'
expect_status_of 200 "a session in chunks"
expect_in_body 't string "caf\u00e9"' "a session in chunks"
expect_in_body 'n int 5' "a session in chunks"
! grep -q '^ignored ' "$DIR/b" || fail "HTTP_SESSION was read beside the chunks"
expect_directives 'X-Session-Set: u=y' "a change to a session in chunks"
visitor '' SESSION_CHUNKS=2 'SESSION_CHUNK_1=a=1' 'QUERY_STRING=set[u]=y'
expect_status_of 500 "a chunk missing"
expect_directives '' "a chunk missing"
expect_err 'SESSION_CHUNKS is 2 but SESSION_CHUNK_2 is missing' "a chunk missing"

# --- Without sessiond in front (no SESSION_NEW), a client's own Session:
# header (HTTP_SESSION) is never taken for the session.
fpm HTTP_SESSION=UserName=forged 'QUERY_STRING=set[x]=1'
expect_status_of 500 "a request around sessiond"
expect_directives '' "a request around sessiond"
expect_err 'did not come through sessiond' "a request around sessiond"
! grep -q forged "$DIR/b" || fail "a request around sessiond saw the forged session"
exit 0
