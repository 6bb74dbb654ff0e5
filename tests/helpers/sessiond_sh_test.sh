#!/bin/sh
# Unit tests of helpers/sh/sessiond.sh (ctest helpers.sh runs them in dash
# and in bash --posix): sh tests/helpers/sessiond_sh_test.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../helpers/sh/sessiond.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-sh-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { printf 'FAIL: %s\n' "$*" >&2; failed=1; }
# same WHAT GOT EXPECTED
same() { [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"; }
nl='
'

# --- Encoding: every byte but the unreserved ones.
same 'unreserved' "$(session_encode 'AZaz09-._~')" 'AZaz09-._~'
same 'reserved' "$(session_encode "& =%+$nl")" '%26%20%3D%25%2B%0A'
same 'UTF-8' "$(session_encode "$(printf '\342\202\254')")" '%E2%82%AC'
same 'not UTF-8' "$(session_encode "$(printf '\377\200')")" '%FF%80'
same 'empty' "$(session_encode '')" ''
same 'shell bytes' "$(session_encode "\"'\\\$\`*?[")" '%22%27%5C%24%60%2A%3F%5B'
same 'a trailing newline is a byte' "$(session_encode "a$nl$nl" | od -An -c | tr -d ' \n')" 'a%0A%0A'
same 'decode' "$(session_decode 'a+b%20c%2b%2B%e2%82%AC&x=%26')" "$(printf 'a b c++\342\202\254&x=&')"
same 'decode, no escape' "$(session_decode '100%&%zz%4')" '100%&%zz%4'
same 'decode, newline' "$(session_decode "a%0A$nl%0Ab")" "a$nl$nl${nl}b"
all=$(printf '%s' "$(awk 'BEGIN { for (i = 1; i < 256; i++) printf "%c", i }' | LC_ALL=C tr -d '\n')")

# The awkward keys and values: & = % + newline, UTF-8 and not, shell's own, empty.
# Each is stored by session_set and read back by session_get through the
# text sessiond would make of it (the directive decoded, the items encoded).
i=0
for v in '&' '=' '%' '+' 'a b' "line${nl}break" "$(printf 'caf\303\251 \342\202\254')" '' '%41' \
         'x=y&z=w' "$(printf '\377\200')" '~-._' "$(printf '\t\r')" "\"'\\\$\`" "$all"; do
  i=$((i + 1))
  line=$(session_set "k$v" "$v=v&")
  case $line in
    "X-Session-Set: "*"$(printf '\r')") ;;
    *) fail "session_set $i: $line" ;;
  esac
  same "decode $i" "$(session_decode "$(session_encode "$v")")" "$v"
  pair=${line#X-Session-Set: }
  pair=${pair%?}  # the CR
  case $pair in *[!A-Za-z0-9%._~=-]*) fail "session_set $i sent a byte that is no escape: $pair" ;; esac
  pairs="${pairs:+$pairs&}$pair"
done
HTTP_SESSION=$pairs
i=0
for v in '&' '=' '%' '+' 'a b' "line${nl}break" "$(printf 'caf\303\251 \342\202\254')" '' '%41' \
         'x=y&z=w' "$(printf '\377\200')" '~-._' "$(printf '\t\r')" "\"'\\\$\`" "$all"; do
  i=$((i + 1))
  session_get "k$v" >"$tmp/got" || fail "session_get $i: absent"
  printf '%s=v&' "$v" >"$tmp/want"
  cmp -s "$tmp/got" "$tmp/want" || fail "session_get $i: $(od -c "$tmp/got" | head -3)"
  same "session_type $i" "$(session_type "k$v")" string
done
same 'keys' "$(session_keys | wc -l)" 16  # 15, one with a newline in it

# --- The forms sessiond and mod_session send, and absence.
# Under sessiond (SESSION_MODE set) an item whose key is a name and which is
# not in SESSION_VAR_ is absent: no process is started to look.
SESSION_MODE=write SESSION_VAR_x=1
same 'SESSION_VAR_ first' "$(session_get x)" 1
same 'no SESSION_VAR_: absent' "$(session_get k; echo "[$?]")" '[1]'
unset SESSION_MODE SESSION_VAR_x
HTTP_SESSION='user=ann+lee&&x=%7e&empty=&visits=3&cart=%7B%22apple%22%3A1%7D&a%20b=%5B1%5D'
SESSION_VAR_user='ann lee' SESSION_VAR_visits=3 SESSION_VAR_cart='{"apple":1}'
SESSION_TYPES='visits&cart&a%20b'
same 'plus is a space' "$(session_get user)" 'ann lee'
same 'a key in any encoding' "$(HTTP_SESSION='a+b=1&c%2fd=2&e%2Ff=3'; session_get 'a b'; session_get c/d; session_get e/f)" 123
same 'lower-case escape' "$(session_get x)" '~'
same 'empty value' "$(session_get empty; echo "[$?]")" '[0]'
same 'absent' "$(session_get none; echo "[$?]")" '[1]'
same 'default' "$(session_get none 0)" '0'
same 'not the default' "$(session_get visits 0)" '3'
# session_let: the same values into the page's own variable.
session_let got user; same 'session_let' "$got" 'ann lee'
session_let got x; same 'session_let, no SESSION_VAR_' "$got" '~'
session_let got none 0; same 'session_let, the default' "$got" 0
got=kept; session_let got none; same 'session_let, absent' "$?:$got" '1:kept'
session_let got 'a b'; same 'session_let, a key that is no name' "$got" '[1]'
(SESSION_MODE=write; session_let got zzz dflt; same 'session_let, surely absent under sessiond' "$got" dflt)
same 'session_let, a bad variable' "$(session_let '1x' user 2>/dev/null; echo "[$?]")" '[2]'
session_has user || fail 'session_has user'
! session_has none || fail 'session_has none'
same 'a JSON number' "$(session_get visits)" 3
same 'its type' "$(session_type visits)" json
same 'a JSON object' "$(session_get cart)" '{"apple":1}'
same 'a JSON array under a key that is no name' "$(session_get 'a b')" '[1]'
same 'its type' "$(session_type 'a b')" json
same 'a string' "$(session_type user)" string
same 'no type when absent' "$(session_type none; echo "[$?]")" '[1]'
same 'keys' "$(session_keys | tr '\n' ,)" 'user,x,empty,visits,cart,a b,'
unset SESSION_TYPES
SESSION_TYPE_visits=json
same 'SESSION_TYPE_ counts too' "$(session_type visits)" json
unset SESSION_TYPE_visits SESSION_VAR_user SESSION_VAR_visits SESSION_VAR_cart

# --- A session over 128 KiB: no HTTP_SESSION, the text in SESSION_FILE.
unset HTTP_SESSION
awk 'BEGIN { for (i = 0; i < 60000; i++) printf "%%E2%%82%%AC" }' >"$tmp/big"  # 180 kB, 540 kB encoded
{ printf 'big='; cat "$tmp/big"; printf '&n=4&s=x%%26y'; } >"$tmp/session"
SESSION_FILE=$tmp/session
session_get big >"$tmp/got"
awk 'BEGIN { for (i = 0; i < 60000; i++) printf "\342\202\254" }' >"$tmp/want"
cmp -s "$tmp/got" "$tmp/want" || fail "a 180 kB value from SESSION_FILE: $(wc -c <"$tmp/got") bytes"
same 'the next item' "$(session_get s)" 'x&y'
same 'no types line' "$(session_type n)" string
printf '\nn' >>"$tmp/session"
same 'the types line' "$(session_type n)" json
same 'the last item before the types line' "$(session_get s)" 'x&y'
same 'keys, not the types line' "$(session_keys | tr '\n' ,)" 'big,n,s,'
unset SESSION_FILE
same 'no session at all' "$(session_get x; echo "[$?]")" '[1]'
same 'no keys at all' "$(session_keys; echo "[$?]")" '[0]'

# --- Every directive.
same 'set' "$(session_set 'a b' 'x&y')" "$(printf 'X-Session-Set: a%%20b=x%%26y\r')"
same 'set, empty' "$(session_set e '')" "$(printf 'X-Session-Set: e=\r')"
same 'set-json' "$(session_set_json cart '{"apple":1}')" "$(printf 'X-Session-Set-Json: cart=%%7B%%22apple%%22%%3A1%%7D\r')"
same 'remove' "$(session_remove 'a b')" "$(printf 'X-Session-Remove: a%%20b\r')"
same 'clear' "$(session_clear)" "$(printf 'X-Session-Clear: 1\r')"
same 'regenerate' "$(session_regenerate)" "$(printf 'X-Session-Regenerate: 1\r')"
same 'abandon' "$(session_abandon)" "$(printf 'X-Session-Abandon: 1\r')"

# --- Status and mode.
same 'no status on an off location' "$(session_status)" ''
SESSION_STATUS=expired; same 'SESSION_STATUS' "$(session_status)" expired
SESSION_MODE=write; session_writable || fail 'write is writable'
SESSION_MODE=exclusive; session_writable || fail 'exclusive is writable'
SESSION_MODE=read; ! session_writable || fail 'read is not writable'
SESSION_MODE=off; ! session_writable || fail 'off is not writable'
SESSION_MODE=write SESSION_STATUS=unavailable; ! session_writable || fail 'unavailable is not writable'

# --- The page's own variables are left alone.
v=mine i=mine pairs=mine
HTTP_SESSION='v=1'
session_get v >/dev/null; session_type v >/dev/null; session_set v 1 >/dev/null
same "the page's variables" "$v $i $pairs" 'mine mine mine'

# An item whose value holds a NUL has no SESSION_VAR_ (no environment
# variable can hold one) but is there: found in HTTP_SESSION, not absent.
(
  SESSION_MODE=write HTTP_SESSION='n=x%00y&m=1' SESSION_VAR_m=1
  unset SESSION_TYPES SESSION_FILE
  session_has n || fail 'a value with a NUL: session_has says absent'
  same 'a value with a NUL: its type' "$(session_type n)" string
  same 'a value with a NUL: the bytes sh holds' "$(session_get n 2>/dev/null | tr -d '\000')" xy
  same 'a value with a NUL: another name is still absent' "$(session_get k; echo "[$?]")" '[1]'
  exit $failed
) || failed=1

exit $failed
