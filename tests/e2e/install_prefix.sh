#!/bin/bash
# The installed systemd units run the sessiond that the same install put in
# place: with the default PREFIX=/usr/local the service's ExecStart names
# /usr/local/bin/sessiond (not /usr/bin/sessiond, which is not there), with
# PREFIX=/usr /usr/bin/sessiond, and the units land where systemd looks under
# that prefix. As `make install PREFIX=... DESTDIR=...` runs it: the prefix is
# given to the install, not to the configuration.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
BUILD_DIR=$(dirname "$SESSIOND")
[ -f "$BUILD_DIR/CMakeCache.txt" ] || fail "$SESSIOND is not in a CMake build tree"

# installed PREFIX: the units of an install under PREFIX name its binary.
installed() {
  local dest="$DIR/dest$1" exec
  DESTDIR="$dest" cmake --install "$BUILD_DIR" --prefix "$1" >"$DIR/install.log" 2>&1 ||
    fail "cmake --install --prefix $1 failed: $(cat "$DIR/install.log")"
  [ -x "$dest$1/bin/sessiond" ] || fail "--prefix $1: no $1/bin/sessiond"
  [ -f "$dest$1/lib/systemd/system/sessiond.socket" ] || fail "--prefix $1: no $1/lib/systemd/system/sessiond.socket"
  exec=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$dest$1/lib/systemd/system/sessiond.service")
  expect_eq "$exec" "$1/bin/sessiond" "--prefix $1: the service's ExecStart"
  # Nothing else installed names a binary this install did not put there.
  [ "$1" = /usr ] || ! grep -rl "/usr/bin/sessiond" "$dest$1/lib/systemd" ||
    fail "--prefix $1: a unit names /usr/bin/sessiond"
}
installed /usr/local
installed /usr
# The package's units (PREFIX=/usr) are the source units as they are.
for unit in "$SESSIOND_SRC"/systemd/*.service "$SESSIOND_SRC"/systemd/*.socket; do
  cmp -s "$unit" "$DIR/dest/usr/usr/lib/systemd/system/$(basename "$unit")" ||
    fail "--prefix /usr: $(basename "$unit") differs from systemd/"
done
exit 0
