#!/bin/bash
# The page helpers (helpers/: sh, Python, Perl) through nginx and a real
# sessiond: every awkward key and value (& = % + newline, UTF-8 and not,
# the shell's own bytes, empty) stored by one language's helper is stored
# byte for byte and reads back the same in all three, and so does a JSON
# value with its type; a session over 128 KiB (SESSION_FILE, no
# HTTP_SESSION) reads back whole in each; each helper's remove, clear,
# regenerate and abandon do what they say; and each tells the page the
# session's status (new, ok, regenerated, expired).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a
PAGES_OF=(helper helper.py helper.pl)

# call PAGE OP [KEY VALUE]... | [KEY]: the helper page's OP on these items
# (form fields k and v, percent-encoded by curl), which must answer 200.
call() {
  local page=$1 op=$2 args=()
  shift 2
  while [ $# -gt 0 ]; do
    args+=(--data-urlencode "k=$1")
    [ $# -ge 2 ] && { args+=(--data-urlencode "v=$2"); shift; }
    shift
  done
  get "/$page?$op" "${args[@]}"
  expect_status 200 "$page?$op"
}
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# expect_items PAGE KEY VALUE TYPE...: PAGE reads each KEY as exactly VALUE,
# of TYPE (none: absent, and VALUE empty).
expect_items() {
  local page=$1 keys=() want=""
  shift
  while [ $# -gt 0 ]; do
    keys+=(--data-urlencode "k=$1")
    want+="$3 $(hex "$2")"$'\n'
    shift 3
  done
  get "/$page?get" "${keys[@]}"
  expect_status 200 "$page?get"
  [ "$(body)" = "${want%$'\n'}" ] || fail "$page read: $(body | head -c 400)
expected: ${want:0:400}"
}

# --- A new visitor, then one with a session.
for page in "${PAGES_OF[@]}"; do
  rm -f "$JAR"
  call "$page" status
  expect_body '^status=new$' "$page: a new visitor"
  expect_body '^mode=write$' "$page: the mode"
  expect_body '^writable=yes$' "$page: writable"
  expect_body '^from=env$' "$page: a small session"
done
call helper set first 1
call helper.py status
expect_body '^status=ok$' "a visitor with a session"

# --- Awkward keys and values, across the languages: each stored as these
# bytes (not as their encoding), and read back as them.
values=('&' '=' '%' '+' 'a b' $'line\nbreak\n' $'caf\xc3\xa9 \xe2\x82\xac' '' '%41' 'x=y&z=w' $'\xff\x80' $'\t"\'\\$`*?[' 'AZaz09-._~')
for setter in "${PAGES_OF[@]}"; do
  items=() expect=() stored=""
  i=0
  for v in "${values[@]}"; do
    i=$((i + 1))
    items+=("$v key $i" "$v/$setter")
    expect+=("$v key $i" "$v/$setter" string)
    stored+="$(hex "$v key $i") $(hex "$v/$setter")"$'\n'
  done
  call "$setter" set "${items[@]}"
  expect_eq "$(sql "SELECT lower(hex(key)) || ' ' || lower(hex(value)) FROM items
                    WHERE lower(hex(value)) LIKE '%$(hex "/$setter")' ORDER BY 1")" \
    "$(printf '%s' "$stored" | LC_ALL=C sort)" "the bytes $setter stored"
  for reader in "${PAGES_OF[@]}"; do expect_items "$reader" "${expect[@]}"; done
done

# --- Typed values: JSON stored by one helper reads as JSON text, of type
# json, in all three; a string stored over it is a string again; text that
# is not JSON is refused (502) and nothing is stored.
call helper.py set_json cart '{"apple":1,"pear":[true,null]}'
call helper.pl set_json 'a key' '"te&xt"'
call helper set_json n 3
for page in "${PAGES_OF[@]}"; do
  expect_items "$page" cart '{"apple":1,"pear":[true,null]}' json 'a key' '"te&xt"' json n 3 json
done
call helper.pl set n 3
expect_items helper.py n 3 string
# A form field's UTF-8 bytes put into JSON by Perl are that text, not its
# bytes taken as Latin-1 (which stored "cafÃ©").
call helper.pl set_json_string name $'caf\xc3\xa9 \xe2\x82\xac'
expect_items helper.py name $'"caf\xc3\xa9 \xe2\x82\xac"' json
get "/helper?set_json" --data-urlencode k=bad --data-urlencode 'v={"a":'
expect_status 502 "a value that is not JSON"
expect_items helper.pl bad '' none

# --- A session over 128 KiB: two values of 48 kB, almost every byte escaped.
big() { awk -v c="$1" 'BEGIN { for (i = 0; i < 6000; i++) printf "&%%+\n\342\202\254%s", c }'; }
BIG1=$(big 1) BIG2=$(big 2)
call helper set big1 "$BIG1"
call helper.py set big2 "$BIG2"
for page in "${PAGES_OF[@]}"; do
  call "$page" status
  expect_body '^from=file$' "$page: a 260 kB session comes in SESSION_FILE"
  expect_items "$page" big1 "$BIG1" string big2 "$BIG2" string '= key 2' '=/helper.pl' string \
    cart '{"apple":1,"pear":[true,null]}' json
done

# --- remove, clear, regenerate, abandon, in each language.
for page in "${PAGES_OF[@]}"; do
  call "$page" remove big1
  expect_items helper big1 '' none big2 "$BIG2" string
  before=$(cookie)
  call "$page" regenerate
  [ -n "$(cookie)" ] && [ "$(cookie)" != "$before" ] || fail "$page: regenerate kept the id"
  # The old id, within its grace, is served the session: regenerated.
  get_cookie "sid=$before" "/$page?status"
  expect_body '^status=regenerated$' "$page: the old id after regenerate"
  expect_items helper.pl big2 "$BIG2" string
  call "$page" clear
  expect_eq "$(sql "SELECT count(*) FROM items WHERE key IN ('big2', 'cart')")" 0 "$page: items after clear"
  expect_items helper.py big2 '' none
  call "$page" set big2 "$BIG2"
  before=$(cookie)
  call "$page" abandon
  [ -z "$(cookie)" ] || fail "$page: the cookie outlived abandon"
  get_cookie "sid=$before" "/$page?status"
  expect_body '^status=expired$' "$page: the id of an abandoned session"
  expect_eq "$(sql "SELECT count(*) FROM items WHERE key = 'big2'")" 0 "$page: items after abandon"
  call "$page" set big1 "$BIG1" big2 "$BIG2" cart '{"apple":1,"pear":[true,null]}'
done
exit 0
