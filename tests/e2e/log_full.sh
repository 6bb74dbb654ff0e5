#!/bin/bash
# --log-file on a disk that fills up (a real tmpfs, full): requests are
# still answered; the log holds whole lines only (a write the full disk cut
# short is taken back, not left torn); and once there is room again a line
# says how many lines were lost, so that the lines kept plus the lines
# counted are every request's line.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "log_full.sh: mounting a tmpfs needs root: skipped" >&2
  exit 0
fi
MNT="$DIR/disk"
mkdir "$MNT"
if ! mount -t tmpfs -o size=64k,mode=0755 sessiond-test "$MNT" 2>"$DIR/mount.err"; then
  echo "log_full.sh: cannot mount a tmpfs here ($(cat "$DIR/mount.err")): skipped" >&2
  exit 0
fi
trap 'stack_stop; umount "$MNT"; cleanup' EXIT
LOG="$MNT/sessiond.log"

start_sessiond a --log-file "$LOG"
A=$STACK_PID
start_nginx a
get /no-such-page-0
expect_status 404 "a missing page, the disk not full yet"

# The disk full: what the log file's last page still holds, then nothing.
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
[ "$(df --output=avail "$MNT" | tail -n 1 | tr -d ' ')" = 0 ] || fail "the tmpfs is not full: $(df "$MNT")"
N=150
for i in $(seq "$N"); do
  get "/no-such-page-$i"
  expect_status 404 "a missing page on a full disk ($i)"
done
rm "$MNT/filler"
get /no-such-page-after
expect_status 404 "a missing page once the disk has room again"
stack_kill TERM "$A" || fail "sessiond did not stop cleanly"

[ -z "$(tail -c 1 "$LOG")" ] || fail "the log ends inside a line: $(tail -c 200 "$LOG")"
# Each line: the time it was logged (UTC), then the line as on stderr.
T='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z '
bad=$(grep -Ev "^${T}sessiond: " "$LOG" | head -n 3)
[ -z "$bad" ] || fail "log lines not in the documented format (torn?): $bad"
sed -E "s/^$T//" "$LOG" >"$DIR/lines"
LOG="$DIR/lines"
bad=$(grep '^sessiond: 404 ' "$LOG" | grep -Ev '^sessiond: 404 GET /(no-such-page-[0-9a-z]+): no page .*/\1$' | head -n 3)
[ -z "$bad" ] || fail "a line torn or run together: $bad"
kept=$(grep -c '^sessiond: 404 GET /no-such-page-[0-9]*: ' "$LOG")
lost=$(sed -n 's/^sessiond: \([0-9]*\) log lines dropped: the log could not be written (No space left on device)$/\1/p' "$LOG" |
  awk '{ n += $1 } END { print n + 0 }')
[ "$lost" -gt 0 ] || fail "no line says how many lines were lost ($kept of $((N + 1)) kept)"
expect_eq "$((kept + lost))" "$((N + 1))" "lines kept ($kept) plus lines counted as lost ($lost)"
grep -q '^sessiond: 404 GET /no-such-page-after: ' "$LOG" || fail "no line once the disk had room again"
grep -q '^sessiond: stopped$' "$LOG" || fail "no line saying sessiond stopped"
exit 0
