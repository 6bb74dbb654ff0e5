#!/bin/bash
# The page helpers (helpers/: sh, Python, Perl) through nginx and a real
# sessiond: every awkward key and value (& = % + newline, UTF-8 and not,
# the shell's own bytes, empty) stored by one language's helper is stored
# byte for byte and reads back the same in all three; a session over
# 128 KiB (SESSION_FILE, no HTTP_SESSION) reads back whole in each; each
# helper's remove, clear, regenerate and abandon do what they say; and each
# tells a new visitor from one with a session.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a
PAGES_OF=(helper helper.py helper.pl)

# call PAGE OP [KEY [VALUE]]: the helper page's OP on this item (a form
# field each, percent-encoded by curl), which must answer 200.
call() {
  local page=$1 op=$2
  get "/$page?$op" --data-urlencode "k=${3-}" --data-urlencode "v=${4-}"
  expect_status 200 "$page?$op"
}
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F; }
# expect_value PAGE KEY VALUE TYPE: PAGE reads KEY as exactly VALUE, of TYPE.
expect_value() {
  call "$1" get "$2"
  printf '%s' "$3" >"$DIR/want"
  cmp -s "$DIR/want" "$DIR/body" || fail "$1 read '$2' as $(od -c "$DIR/body" | head -3), expected $(od -c "$DIR/want" | head -3)"
  expect_eq "$(header X-Type)" "$4" "$1: the type of '$2'"
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

# --- Awkward keys and values, across the languages.
values=('&' '=' '%' '+' 'a b' $'line\nbreak\n' $'caf\xc3\xa9 \xe2\x82\xac' '' '%41' 'x=y&z=w' $'\xff\x80' $'\t"\'\\$`*?[' 'AZaz09-._~')
for setter in "${PAGES_OF[@]}"; do
  i=0
  for v in "${values[@]}"; do
    i=$((i + 1))
    key="$v key $i"
    call "$setter" set "$key" "$v/$setter"
    # Stored as these bytes, not as their encoding.
    expect_eq "$(sql "SELECT hex(value) FROM items WHERE hex(key) = '$(hex "$key")'")" "$(hex "$v/$setter")" \
      "$setter: the stored bytes of item $i"
    for reader in "${PAGES_OF[@]}"; do expect_value "$reader" "$key" "$v/$setter" string; done
  done
done

# --- A session over 128 KiB: two values of 60 kB, almost every byte escaped.
big() { awk -v c="$1" 'BEGIN { for (i = 0; i < 6000; i++) printf "&%%+\n\342\202\254%s", c }'; }
call helper set big1 "$(big 1)"
call helper.py set big2 "$(big 2)"
for page in "${PAGES_OF[@]}"; do
  call "$page" status
  expect_body '^from=file$' "$page: a 240 kB session comes in SESSION_FILE"
  expect_value "$page" big1 "$(big 1)" string
  expect_value "$page" big2 "$(big 2)" string
  expect_value "$page" '= key 2' '=/helper.pl' string
done

# --- remove, clear, regenerate, abandon, in each language.
for page in "${PAGES_OF[@]}"; do
  call "$page" remove big1
  expect_value helper big1 '' none
  before=$(cookie)
  call "$page" regenerate
  [ -n "$(cookie)" ] && [ "$(cookie)" != "$before" ] || fail "$page: regenerate kept the id"
  expect_value helper.pl big2 "$(big 2)" string
  call "$page" set again "$page"
  call "$page" clear
  expect_eq "$(sql 'SELECT count(*) FROM items')" 0 "$page: items after clear"
  expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "$page: sessions after clear"
  call "$page" set big2 "$(big 2)"
  call "$page" abandon
  expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "$page: sessions after abandon"
  [ -z "$(cookie)" ] || fail "$page: the cookie outlived abandon"
  call "$page" set big1 "$(big 1)"
  call "$page" set big2 "$(big 2)"
done
exit 0
