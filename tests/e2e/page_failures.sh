#!/bin/bash
# A page that fails (non-zero exit, signal, no or malformed header block,
# overrun, too much output) gets 502/504 and none of its session changes;
# pages that are missing, not executable or outside the root are never run;
# a page that writes before it reads its body does not deadlock.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --page-timeout 1s --max-output-bytes 1MiB
start_nginx a

get "/set?k=original"
expect_status 200 "first write"
unchanged() {
  get /dump
  expect_body "SESSION_VAR_k=original" "session after $1"
}

for page in fail:502 crash:502 noheader:502 notcgi:502 huge:502 slow:504; do
  get "/${page%%:*}"
  expect_status "${page##*:}" "page ${page%%:*}"
  expect_no_body "changed" "page ${page%%:*}"
  unchanged "page ${page%%:*}"
done
grep -q "exited with status 3" "$DIR/a.log" || fail "no log line for the failing page"
grep -q "overran page_timeout" "$DIR/a.log" || fail "no log line for the slow page"
# The whole process group of an overrunning page is killed, not just the page.
child=$(cat "$PAGES/slow.child")
# (It may linger as a zombie where nothing reaps orphans; it must not run.)
state=$(ps -o stat= -p "$child" 2>/dev/null)
[ -z "$state" ] || [[ "$state" == Z* ]] || fail "the slow page's child $child outlived the timeout ($state)"

get "/directive?X-Session-Set=novalue"
expect_status 502 "malformed X-Session-Set"
get "/directive?X-Session-Clear=yes"
expect_status 502 "malformed X-Session-Clear"
unchanged "malformed session headers"

# Never run: missing, not executable, a directory, outside the root via a symlink.
mkdir -p "$DIR/outside" "$PAGES/subdir"
printf '#!/bin/sh\ntouch "%s/ran"\nprintf "Content-Type: text/plain\\r\\n\\r\\nevil\\n"\n' "$DIR" >"$DIR/outside/evil"
chmod +x "$DIR/outside/evil"
ln -s "$DIR/outside/evil" "$PAGES/link"
for path in /missing /plain.txt /subdir /link "/../outside/evil" "/%2e%2e/outside/evil"; do
  get "$path" --path-as-is
  [ "$STATUS" = 404 ] || [ "$STATUS" = 400 ] || fail "$path: status $STATUS, expected 404 (or nginx's 400)"
done
[ ! -e "$DIR/ran" ] || fail "a page outside the pages root was run"
grep -q "outside the pages root" "$DIR/a.log" || fail "no log line for the page outside the root"

# Writes 256 KiB before reading a 512 KiB body: served, whole.
head -c 524288 /dev/zero | tr '\0' 'y' >"$DIR/big-body"
post /echo --data-binary "@$DIR/big-body"
expect_status 200 "page that writes before reading"
expect_body "body bytes: 524288" "page that writes before reading"
