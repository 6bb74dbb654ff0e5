#!/bin/bash
# What a browser asks for besides pages. nginx serves /static/ and
# /favicon.ico itself, from a static directory beside the pages directory,
# and sessiond never hears of them; no URL hands out a page's source, however
# it names the page. Last, PATH_INFO: /pathinfo/extra/path runs the page
# /pathinfo with /extra/path in PATH_INFO (RFC 3875, 4.1.5).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a

# The sample pages link the stylesheet nginx serves.
get /login
expect_status 200 "login form"
expect_body 'href="/static/style.css"' "login form"

expect_static_files

# A page's source is never a static file: not below /static/, not through
# .. (plain, percent-encoded, or the alias off-by-slash /static../), not
# under the pages directory's own name, not with a suffix. Some of these run
# the page (nginx resolves the .. first), which is fine: its output is not
# its source.
pages_name=$(basename "$PAGES")
for path in /static/login /static/../login "/static/%2e%2e/login" "/static/..%2flogin" \
    /static../login "/static..%2flogin" "/static/../$pages_name/login" \
    "/static/..%2f$pages_name%2flogin" "/static/%2e%2e/$pages_name/login" \
    "/static../$pages_name/login" /favicon.ico/../login "/favicon.ico/..%2flogin" \
    /sample_pages/login "/$pages_name/login" "/static/sample_pages/login" \
    /login.txt /login~ /login.bak /login/ "/login%00.txt" /static/home /static/logout; do
  get "$path" --path-as-is
  ! grep -q '#!/bin/sh' "$DIR/body" || fail "$path: status $STATUS, a page's source: $(body | head -c 200)"
done

# The demo's and tests' nginx refuses a static directory that is the pages
# directory, inside it, or around it.
mkdir -p "$PAGES/assets"
for static in "$PAGES" "$PAGES/assets" "$(dirname "$PAGES")"; do
  msg=$(STACK_STATIC=$static stack_nginx "$PAGES" a 2>&1) && fail "nginx started with static directory $static"
  [[ "$msg" == *"inside the"* ]] || fail "static directory $static: refused for another reason: $msg"
done

# PATH_INFO. Until sessiond's handler looks for the page along
# SCRIPT_FILENAME (nginx sends $document_root/pathinfo/extra/path and
# SCRIPT_NAME=/pathinfo/extra/path, and no PATH_INFO), the request for
# /pathinfo/extra/path gets 404 and this test fails there.
get /pathinfo
expect_status 200 "/pathinfo"
expect_body "^SCRIPT_NAME=/pathinfo$" "/pathinfo"
expect_body "^PATH_INFO=$" "/pathinfo"
expect_body "^SCRIPT_FILENAME=/.*/pathinfo$" "/pathinfo"
get /nope/extra
expect_status 404 "/nope/extra"
# A path below a file that is not an executable page runs nothing.
get /plain.txt/extra
expect_status 404 "/plain.txt/extra"
get /pathinfo/extra/path
expect_status 200 "/pathinfo/extra/path"
expect_body "^SCRIPT_NAME=/pathinfo$" "/pathinfo/extra/path"
expect_body "^PATH_INFO=/extra/path$" "/pathinfo/extra/path"
expect_body "^SCRIPT_FILENAME=/.*/pathinfo$" "/pathinfo/extra/path"
