#!/bin/bash
# A mistyped option or command (or option in the config file) is named in the
# message, with the closest real name when there is one, and exits 2 (a usage error) with nothing started;
# a required option that is really missing is still said to be required.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# says TEXT ARGS...: sessiond ARGS exits 2 and its first line is TEXT.
says() {
  local want=$1 out status
  shift
  out=$(timeout 10 "$SESSIOND" "$@" 2>&1)
  status=$?
  [ "$status" = 2 ] || fail "sessiond $*: exit status $status, expected 2; said '$out'"
  expect_eq "$(printf '%s\n' "$out" | head -n 1)" "$want" "sessiond $*"
}
SOCK="unix:$DIR/s.sock"

says "sessiond serve: unknown option --pagse (did you mean --pages?)" serve --listen "$SOCK" --db "$DB" --pagse "$PAGES"
says "sessiond serve: unknown option --pagse (did you mean --pages?)" serve --listen "$SOCK" --db "$DB" --pagse="$PAGES"
says "sessiond: 'serv' is not a command (did you mean serve?)" serv --listen "$SOCK" --db "$DB" --pages "$PAGES"
says "sessiond list: unknown option --bd (did you mean --db?)" list --bd "$DB"
printf '[serve]\npagse = "%s"\n' "$PAGES" >"$DIR/typo.ini"
says "sessiond: unknown option in the config file: serve.pagse (did you mean pages?)" \
  serve --listen "$SOCK" --db "$DB" --config "$DIR/typo.ini"
# A mistyped section, and a key outside any section.
printf '[serv]\npages = "%s"\n' "$PAGES" >"$DIR/section.ini"
says "sessiond: unknown section [serv] in the config file (did you mean serve?)" \
  serve --listen "$SOCK" --db "$DB" --config "$DIR/section.ini"
printf 'pages = "%s"\n' "$PAGES" >"$DIR/nosection.ini"
says "sessiond: pages in the config file belongs under [serve]" \
  serve --listen "$SOCK" --db "$DB" --config "$DIR/nosection.ini"
# An address that is none: said once, as for --listen.
says "sessiond: --app php=bareword: not unix:PATH or HOST:PORT" \
  serve --listen "$SOCK" --db "$DB" --pages "$PAGES" --app php=bareword
# Nothing close: named, no guess.
says "sessiond serve: unknown option --frobnicate" serve --listen "$SOCK" --db "$DB" --pages "$PAGES" --frobnicate
says "sessiond: 'frobnicate' is not a command" frobnicate
# Really missing: still said so.
says "sessiond: --pages is required" serve --listen "$SOCK" --db "$DB"
[ ! -e "$DIR/s.sock" ] && [ ! -e "$DB" ] || fail "a refused sessiond created its socket or database"
exit 0
