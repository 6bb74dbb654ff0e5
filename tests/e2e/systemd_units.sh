#!/bin/bash
# The unit files in systemd/ are what systemd reads without a complaint.
# systemd-analyze verify loads both as systemd would and reports every
# unknown key, unparsable value and missing ExecStart binary, yet exits 0 for
# most of them ("ignoring"): so any line it prints about them fails here. The
# units name /usr/bin/sessiond, which a build tree has not installed: the
# copy checked names the built binary instead. The check is shown to catch a
# broken unit of each kind, and the service's hardening must stay in the
# "OK" band of systemd-analyze security (exposure below 4.0).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (scripts/install-deps installs systemd)"
UNITS="$SESSIOND_SRC/systemd"
grep -q "^ExecStart=/usr/bin/sessiond " "$UNITS/sessiond.service" || fail "ExecStart does not name /usr/bin/sessiond"

# units DIR [SED-SCRIPT-FOR-THE-SERVICE [SED-SCRIPT-FOR-THE-SOCKET]]: copies of
# the units in DIR, ExecStart naming the built binary, changed by the scripts.
units() {
  mkdir -p "$1"
  sed -e "s|^ExecStart=/usr/bin/sessiond |ExecStart=$SESSIOND |" -e "${2:-}" "$UNITS/sessiond.service" >"$1/sessiond.service"
  sed -e "${3:-}" "$UNITS/sessiond.socket" >"$1/sessiond.socket"
}
# verify DIR: systemd-analyze verify on the units in DIR. Leaves what it said
# about them in VERIFY (lines about other units of this machine are not
# theirs) and fails when it said anything or failed.
verify() {
  local out rc
  out=$(cd "$1" && systemd-analyze verify sessiond.socket sessiond.service 2>&1)
  rc=$?
  VERIFY=$(printf '%s\n' "$out" | grep -F sessiond)
  [ "$rc" -eq 0 ] && [ -z "$VERIFY" ]
}

units "$DIR/units"
verify "$DIR/units" || fail "systemd-analyze verify on systemd/: $VERIFY"

# The check sees a mistake in either unit.
units "$DIR/bad-service" "s/^Restart=on-failure/Restart=sometimes/"
! verify "$DIR/bad-service" || fail "verify missed Restart=sometimes"
[[ "$VERIFY" == *"sometimes"* ]] || fail "verify on Restart=sometimes said: $VERIFY"
units "$DIR/bad-key" "s/^KillMode=/KilMode=/"
! verify "$DIR/bad-key" || fail "verify missed an unknown key"
units "$DIR/bad-socket" "" "s/^SocketMode=0660/SocketMode=0x60/"
! verify "$DIR/bad-socket" || fail "verify missed SocketMode=0x60"
units "$DIR/no-binary" "s|^ExecStart=$SESSIOND |ExecStart=$DIR/missing |"
! verify "$DIR/no-binary" || fail "verify missed a missing ExecStart binary"

# Hardening: systemd's own score of the service (0 is best, 10 worst; the
# threshold counts tenths).
(cd "$DIR/units" && systemd-analyze security --offline=yes --threshold=39 sessiond.service >"$DIR/security.out" 2>&1) ||
  fail "systemd-analyze security rates sessiond.service above 3.9: $(grep -E 'Overall|✗' "$DIR/security.out")"
