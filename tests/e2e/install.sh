#!/bin/bash
# cmake --install into a temporary DESTDIR puts every file where the README
# says (bin/sessiond, the man page, the systemd units, the web server
# snippets, the PHP bridge, the page helpers, the example config), and what it installed
# works: the binary runs, the man page renders cleanly and describes every option of
# `serve --help`, and the example config lists every option with its real
# default (uncommented and given temporary paths, the installed binary's
# serve --test accepts it and prints exactly the default settings).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
BUILD_DIR=$(dirname "$SESSIOND")
[ -f "$BUILD_DIR/CMakeCache.txt" ] || fail "$SESSIOND is not in a CMake build tree"
DEST="$DIR/dest"

DESTDIR="$DEST" cmake --install "$BUILD_DIR" --prefix /usr >"$DIR/install.log" 2>&1 ||
  fail "cmake --install failed: $(cat "$DIR/install.log")"

# --- Every file in its place.
for f in usr/bin/sessiond usr/share/man/man8/sessiond.8 usr/share/sessiond/nginx/sessiond.conf usr/share/sessiond/php/sessiond.php \
         usr/share/doc/sessiond/README.md usr/share/doc/sessiond/examples/sessiond.conf.example; do
  [ -f "$DEST/$f" ] || fail "not installed: /$f ($(cd "$DEST" && find . -type f | tr '\n' ' '))"
done
[ -x "$DEST/usr/bin/sessiond" ] || fail "the installed sessiond is not executable"
for unit in "$SESSIOND_SRC"/systemd/*.service "$SESSIOND_SRC"/systemd/*.socket; do
  [ -e "$unit" ] || continue
  cmp -s "$unit" "$DEST/usr/lib/systemd/system/$(basename "$unit")" || fail "unit $(basename "$unit") not installed"
done
for conf in "$SESSIOND_SRC"/apache/*.conf; do
  [ -e "$conf" ] || continue
  cmp -s "$conf" "$DEST/usr/share/sessiond/apache/$(basename "$conf")" || fail "$(basename "$conf") not installed"
done
cmp -s "$SESSIOND_SRC/nginx/sessiond.conf" "$DEST/usr/share/sessiond/nginx/sessiond.conf" ||
  fail "the installed nginx snippet differs from nginx/sessiond.conf"
cmp -s "$SESSIOND_SRC/php/sessiond.php" "$DEST/usr/share/sessiond/php/sessiond.php" ||
  fail "the installed PHP bridge differs from php/sessiond.php"
for h in sh/sessiond.sh python/sessiond.py perl/Sessiond.pm; do
  cmp -s "$SESSIOND_SRC/helpers/$h" "$DEST/usr/share/sessiond/$h" || fail "the page helper $h is not installed as helpers/$h"
done

# --- The binary runs.
SD="$DEST/usr/bin/sessiond"
VERSION=$(sed -n 's/^project(sessiond VERSION \([0-9.]*\).*/\1/p' "$SESSIOND_SRC/CMakeLists.txt")
expect_eq "$("$SD" --version 2>&1)" "$VERSION" "installed sessiond --version"

# --- The man page: clean roff, the version, every option.
MAN="$DEST/usr/share/man/man8/sessiond.8"
warnings=$(groff -man -ww -z "$MAN" 2>&1)
[ -z "$warnings" ] || fail "the man page has roff warnings: $warnings"
# Rendered as ASCII without hyphenation or wrapping, so each option reads whole.
groff -man -Tascii -P-cbou -rHY=0 -rLL=300n "$MAN" >"$DIR/man.txt" 2>&1 || fail "the man page does not render"
grep -q "sessiond $VERSION" "$DIR/man.txt" || fail "the man page does not name version $VERSION"
OPTIONS=$("$SD" serve --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
[ "$(echo "$OPTIONS" | wc -l)" -ge 30 ] || fail "serve --help lists too few options: $OPTIONS"
for opt in $OPTIONS; do
  grep -qE -- "(^|[^a-z-])$opt([^a-z-]|$)" "$DIR/man.txt" || fail "the man page does not describe $opt"
done

# --- The example config: every option, with its real default.
EXAMPLE="$DEST/usr/share/doc/sessiond/examples/sessiond.conf.example"
for opt in $OPTIONS; do
  case "$opt" in --help|--test|--config) continue ;; esac
  grep -qE "^#${opt#--} = " "$EXAMPLE" || fail "the example config lacks ${opt#--}"
done
# The reference: serve --test with only what has no default.
mkdir -p "$DIR/pages"
REQUIRED=(--listen "unix:$DIR/s.sock" --db "$DIR/s.db" --pages "$DIR/pages")
"$SD" serve --test $AS_ROOT "${REQUIRED[@]}" >"$DIR/reference" 2>"$DIR/reference.err" ||
  fail "installed serve --test with defaults: $(cat "$DIR/reference.err")"
# The example with every setting uncommented, but those that have no
# default (the reference prints them as not set) and the required ones,
# which come from the command line as for the reference.
unset_keys=$(sed -n 's/^# \([a-z0-9-]*\) is not set$/\1/p' "$DIR/reference" | tr '\n' '|')
sed -nE 's/^#([a-z][a-z0-9-]* = )/\1/p; /^\[serve\]$/p' "$EXAMPLE" |
  grep -vE "^(${unset_keys}listen|db|pages) = " >"$DIR/adapted.conf"
"$SD" serve --test $AS_ROOT --config "$DIR/adapted.conf" "${REQUIRED[@]}" >"$DIR/from-example" 2>"$DIR/example.err"
status=$?
expect_eq "$status" 0 "installed serve --test with the example config ($(cat "$DIR/example.err"))"
diff "$DIR/reference" "$DIR/from-example" >"$DIR/diff" ||
  fail "the example config's defaults are not sessiond's: $(cat "$DIR/diff")"
[ ! -e "$DIR/s.db" ] && [ ! -e "$DIR/s.sock" ] || fail "serve --test created files"
exit 0
