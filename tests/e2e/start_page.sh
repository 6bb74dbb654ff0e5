#!/bin/bash
# / through nginx/sessiond.conf (and apache/sessiond.conf) is the start page:
# the page named index (the demo's sends the browser to /home). A request that names a directory (the
# pages directory itself, as / did before the snippet had `location = /`, or
# one below it) is a plain 404 logged as "no page", not as a page outside
# the pages root or a file that cannot run.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
mkdir "$PAGES/sub"
# / as a configuration without `location = /` sends it: the pages directory.
cat >"$DIR/nginx-extra-root.conf" <<EOF
location = /root-itself {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/;
    fastcgi_pass sessiond;
}
EOF
restart
start_nginx a

get /
expect_status 303 "/"
expect_eq "$(header Location)" "/home" "where / sends the browser"
login ann
get / -L
expect_status 200 "/, followed"
expect_body "Hello, <b>ann</b>" "/, followed, after a login"

for path in /root-itself /sub/ /sub; do
  get "$path"
  expect_status 404 "$path"
  grep -q "^sessiond: 404 GET $path: no page " "$DIR/a.log" || fail "$path: no 'no page' line"
done
! grep -E "outside the pages root|not an executable file" "$DIR/a.log" || fail "a directory was logged as more than no page"

# The same through apache/sessiond.conf (DirectoryIndex index).
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop"
STACK_PORT=""
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
get /
expect_status 303 "/ through Apache"
expect_eq "$(header Location)" "/home" "where / sends the browser through Apache"
: >"$DIR/a.log"
get /sub/
expect_status 404 "/sub/ through Apache"
grep -q "^sessiond: 404 GET /sub/: no page " "$DIR/a.log" || fail "/sub/ through Apache: no 'no page' line"
exit 0
