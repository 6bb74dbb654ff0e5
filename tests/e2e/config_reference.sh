#!/bin/bash
# The option reference cannot drift: every option `sessiond serve --help`
# lists is in docs/configuration.md's table (with the default serve --test
# prints), in the man page and in the example config; every option those
# three name is one sessiond has; every option of each command's --help is
# in the man page and docs/inspecting.md. Needs no server.
set -u
: "${SESSIOND:?set SESSIOND to the sessiond binary}"
: "${SESSIOND_SRC:?set SESSIOND_SRC to the source tree}"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-confref.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
FAILS=0
fail() { echo "FAIL (config_reference.sh): $*" >&2; FAILS=$((FAILS + 1)); }

# Documented ahead of the code (another branch adds them): allowed to be
# missing from --help, checked like every other option once they are there.

CONF_MD="$SESSIOND_SRC/docs/configuration.md"
INSPECT_MD="$SESSIOND_SRC/docs/inspecting.md"
EXAMPLE="$SESSIOND_SRC/examples/sessiond.conf.example"
MAN_IN="$SESSIOND_SRC/man/sessiond.8.in"

# options: the options a --help output defines, one a line (the names at
# the start of its option lines, not those its descriptions mention).
options() { sed -nE 's/^  (-[a-zA-Z],)?(--[a-z][a-z0-9-]*).*/\2/p' | sort -u; }
SERVE=$("$SESSIOND" serve --help | options)
TOP=$("$SESSIOND" --help | options)
[ "$(echo "$SERVE" | wc -l)" -ge 30 ] || fail "serve --help lists too few options: $SERVE"
# Every command but serve, as --help lists them: a new one is checked too.
COMMANDS=$("$SESSIOND" --help | sed -n '/^Subcommands:/,$p' | sed -nE 's/^  ([a-z]+) .*/\1/p' | grep -vx serve)
[ "$(echo "$COMMANDS" | wc -l)" -ge 8 ] || fail "--help lists too few commands: $COMMANDS"
ALL="$SERVE
$TOP"
for c in $COMMANDS; do
  "$SESSIOND" "$c" --help | options >"$DIR/cmd.$c" || fail "sessiond $c --help failed"
  ALL="$ALL
$(cat "$DIR/cmd.$c")"
done
ALL=$(echo "$ALL" | sort -u)
known() { echo "$ALL" | grep -qx -- "$1"; }

# The man page as text: no hyphenation, no wrapping, so each option reads whole.
sed 's/@PROJECT_VERSION@/0/g' "$MAN_IN" >"$DIR/sessiond.8"
groff -man -Tascii -P-cbou -rHY=0 -rLL=300n "$DIR/sessiond.8" >"$DIR/man.txt" 2>/dev/null ||
  fail "the man page does not render"
in_man() { grep -qE -- "(^|[^a-z-])$1([^a-z-]|$)" "$DIR/man.txt"; }

# The table of docs/configuration.md: the options of each row's first cell.
table_options() {
  sed -nE 's/^\| ((`-[-a-z0-9]+`(, )?)+) \|.*/\1/p' "$CONF_MD" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}
TABLE=$(table_options)
# The example config's keys under [serve], commented out or not.
EXAMPLE_KEYS=$(sed -nE 's/^#?([a-z][a-z0-9-]*) = .*/\1/p' "$EXAMPLE" | sort -u)

# --- serve's options, everywhere.
for opt in $SERVE; do
  echo "$TABLE" | grep -qx -- "$opt" || fail "docs/configuration.md's table lacks $opt"
  in_man "$opt" || fail "the man page does not describe $opt"
  case "$opt" in --help|--test) continue ;; esac
  echo "$EXAMPLE_KEYS" | grep -qx -- "${opt#--}" || fail "examples/sessiond.conf.example lacks ${opt#--}"
done
for opt in $TOP; do
  [ "$opt" = --help ] && continue
  echo "$TABLE" | grep -qx -- "$opt" || fail "docs/configuration.md's table lacks $opt"
  in_man "$opt" || fail "the man page does not describe $opt"
done
# --- the commands' options: in the man page and in docs/inspecting.md.
for c in $COMMANDS; do
  in_man "$c" || fail "the man page does not describe the command $c"
  grep -q "sessiond $c" "$INSPECT_MD" || fail "docs/inspecting.md does not show sessiond $c"
  for opt in $(cat "$DIR/cmd.$c"); do
    [ "$opt" = --help ] && continue
    in_man "$opt" || fail "the man page does not describe $opt of $c"
    grep -q -- "$opt" "$INSPECT_MD" || fail "docs/inspecting.md does not describe $opt of $c"
  done
done

# --- and the other way: nothing documented that sessiond does not have.
for opt in $TABLE; do
  known "$opt" || fail "docs/configuration.md documents $opt, which sessiond does not have"
done
for key in $EXAMPLE_KEYS; do
  known "--$key" || fail "examples/sessiond.conf.example sets $key, which sessiond does not have"
done
# The man page's items: the options on the line after each .TP.
MAN_OPTS=$(awk 'p { print; p = 0 } /^\.TP/ { p = 1 }' "$MAN_IN" |
           grep -oE '\\-\\-[a-z0-9]+(\\-[a-z0-9]+)*' | sed 's/\\-/-/g' | sort -u)
[ -n "$MAN_OPTS" ] || fail "found no option items in the man page"
for opt in $MAN_OPTS; do
  known "$opt" || fail "the man page describes $opt, which sessiond does not have"
done

# --- the defaults in the table are sessiond's: serve --test prints them.
mkdir -p "$DIR/pages"
AS_ROOT=""
[ "$(id -u)" -eq 0 ] && AS_ROOT=--allow-root
"$SESSIOND" serve --test $AS_ROOT --listen "unix:$DIR/s.sock" --db "$DIR/s.db" --pages "$DIR/pages" \
  >"$DIR/reference" 2>"$DIR/reference.err" || fail "serve --test with defaults: $(cat "$DIR/reference.err")"
# norm TEXT: a default as text, without quotes, backticks, spaces; off/on as false/true.
norm() { echo "$1" | tr -d '`" ' | sed 's/^off$/false/; s/^on$/true/'; }
while IFS= read -r line; do
  key=${line%% = *}
  value=${line#* = }
  case "$key" in listen|db|pages|allow-root) continue ;; esac  # given above, or by AS_ROOT
  cell=$(grep -E "^\| \`--$key\`" "$CONF_MD" | head -n 1 | awk -F' \\| ' '{ print $2 }')
  [ -n "$cell" ] || continue  # a missing row is reported above
  [ "$(norm "$cell")" = "$(norm "$value")" ] ||
    fail "docs/configuration.md gives --$key the default '$cell'; sessiond's is $value"
done < <(grep -E '^[a-z][a-z0-9-]* = ' "$DIR/reference")

[ "$FAILS" -eq 0 ] || exit 1
exit 0
