#!/bin/bash
# An open-source PHP application, unmodified, behind sessiond with the one
# prepend line: DokuWiki, Debian's package `dokuwiki` as installed (its
# files in /usr/share/dokuwiki, none edited), whose login is a PHP session
# (session_start() in its init, the login cached in $_SESSION, its CSRF
# token and its own login cookie bound to session_id()). Real nginx -> real
# sessiond (--app) -> real php-fpm in Debian's stock pool (pm = dynamic,
# pm.max_children = 5) with the bridge as auto_prepend_file (stack_php_fpm's
# line), and session.save_path, to see that nothing is written there.
# Driven through its login form by curl with a cookie jar: a wrong password
# refused; logged in, the login in the session and the session in `sessiond
# list`; DokuWiki's own login cookie alone logs nobody in; still logged in
# after restarts of sessiond and of php-fpm, and when DokuWiki re-checks its
# cookie against session_id(); logout (with the CSRF token of
# the session) works. PHP's session cookie (DokuWiki names it "DokuWiki") is
# never sent, no session file is made.
#
# DokuWiki reads its settings and users from /etc/dokuwiki and keeps its
# pages in /var/lib/dokuwiki (Debian's inc/preload.php fixes both, before
# any line of ours could run): the test runs in a mount namespace of its own
# (unshare) where both are overlays whose changes live in a tmpfs, as
# tests/e2e/docs.sh does for the whole machine. The host's are never written.
if [ -z "${SESSIOND_PHP_APP_NS:-}" ]; then
  no() { echo "FAIL (php_app.sh): $*" >&2; exit 1; }
  [ -r /usr/share/dokuwiki/doku.php ] && [ -d /etc/dokuwiki ] && [ -d /var/lib/dokuwiki ] ||
    no "DokuWiki is not installed (Debian package dokuwiki; scripts/install-deps installs it)"
  [ "$(id -u)" -eq 0 ] || no "needs root: DokuWiki's /etc/dokuwiki and /var/lib/dokuwiki are overlaid in a private mount namespace"
  command -v unshare >/dev/null || no "unshare (util-linux) is missing"
  SESSIOND_PHP_APP_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

. "$SESSIOND_SRC/tests/e2e/lib.sh"
NS=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-dokuwiki.XXXXXX")
mount -t tmpfs -o mode=0755 php-app-test "$NS" || fail "cannot mount a tmpfs on $NS"
for d in /etc/dokuwiki /var/lib/dokuwiki; do
  mkdir -p "$NS/u$d" "$NS/w$d"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$NS/u$d,workdir=$NS/w$d" "$d" ||
    fail "cannot put an overlay on $d"
done
trap 'cleanup; umount /etc/dokuwiki /var/lib/dokuwiki "$NS"; rmdir "$NS"' EXIT

# A user of the wiki (DokuWiki's plain auth: user:hash:name:mail:groups;
# it verifies PHP's bcrypt hashes).
HASH=$(php -r 'echo password_hash("pass-of-ann", PASSWORD_BCRYPT);') || fail "php could not hash a password"
printf '# users\nann:%s:Ann Example:ann@example.org:user\n' "$HASH" >/etc/dokuwiki/users.auth.php ||
  fail "cannot write DokuWiki's users"

php_www
FILES="$DIR/php-sessions"
mkdir -p "$FILES"
chmod 777 "$FILES"
FPM=""
start_fpm() {
  stack_php_fpm php "pm = dynamic" "pm.max_children = 5" "pm.start_servers = 2" \
    "pm.min_spare_servers = 1" "pm.max_spare_servers = 3" \
    "php_admin_value[session.save_path] = $FILES" || fail "php-fpm did not start"
  FPM=$STACK_PID
}
start_fpm
# DokuWiki's scripts, from the package's directory, through sessiond.
cat >"$DIR/nginx-extra-dokuwiki.conf" <<EOF
location ~ ^/(doku|index)\.php\$ {
    root /usr/share/dokuwiki;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    fastcgi_param SESSIOND_APP php;
    fastcgi_pass sessiond;
}
EOF
restart --app "php=unix:$DIR/php.sock"
start_nginx a

# wiki QUERY [CURL ARGS...]: doku.php as the visitor of $JAR: 200 (or a
# redirect), never PHP's own session cookie.
wiki() {
  _q=$1; shift
  get "/doku.php?$_q" "$@"
  [ "$STATUS" = 200 ] || [ "$STATUS" = 302 ] || [ "$STATUS" = 303 ] ||
    fail "doku.php?$_q: status $STATUS: $(body | head -c 300)"
  ! grep -qiE '^Set-Cookie: *(DokuWiki|PHPSESSID)=' "$DIR/headers" ||
    fail "doku.php?$_q: PHP sent its own session cookie: $(header Set-Cookie)"
}
sectok() { sed -n 's/.*name="sectok" value="\([^"]*\)".*/\1/p' "$DIR/body" | head -n 1; }
logged_in() { grep -q 'do=logout' "$DIR/body" && grep -q 'Ann Example' "$DIR/body"; }
expect_logged_in() { wiki "id=start"; logged_in || fail "$1: not logged in: $(body | head -c 600)"; }

# --- Login through the form.
wiki "id=start&do=login"
grep -q 'name="u"' "$DIR/body" || fail "no login form: $(body | head -c 600)"
TOK=$(sectok)
# A wrong password: DokuWiki's 403, nobody logged in, no login in the session.
get "/doku.php?id=start&do=login" -X POST --data-urlencode "sectok=$TOK" --data "id=start&do=login&u=ann&p=wrong"
expect_status 403 "a wrong password"
! logged_in || fail "a wrong password logged in"
wiki "id=start&do=login" -X POST --data-urlencode "sectok=$TOK" --data "id=start&do=login&u=ann" \
  --data-urlencode "p=pass-of-ann"
if [ "$STATUS" = 200 ]; then logged_in || fail "login: not logged in: $(body | head -c 600)"; fi
expect_logged_in "after the login"
SID=$(cookie)
[ -n "$SID" ] || fail "no sessiond cookie after the login"
# The login is in the session, as DokuWiki keeps it: $_SESSION[DW...]['auth'],
# an array, stored as a JSON item; `sessiond list` shows it.
auth() { sql "SELECT value FROM items WHERE key LIKE 'DW%'"; }
case $(auth) in '{'*'"auth":{"user":"ann",'*) ;; *) fail "the session holds no login: $(auth | head -c 300)" ;; esac
"$SESSIOND" list --db "$DB" --json >"$DIR/list" 2>&1 || fail "sessiond list: $(cat "$DIR/list")"
[ "$(grep -o '"tag"' "$DIR/list" | wc -l)" = 1 ] || fail "sessiond list: $(cat "$DIR/list")"

# DokuWiki's own login cookie without sessiond's session logs nobody in: the
# login is the PHP session's.
DW=$(awk '$6 ~ /^DW/ { print $6 "=" $7 }' "$JAR")
[ -n "$DW" ] || fail "DokuWiki set no login cookie of its own"
get_cookie "$DW" "/doku.php?id=start"
! logged_in || fail "DokuWiki's cookie alone, without the session, logged in"

# --- Restarts of sessiond and of php-fpm keep the login.
restart --app "php=unix:$DIR/php.sock"
stack_kill TERM "$FPM" || fail "php-fpm did not stop cleanly"
start_fpm
expect_logged_in "after restarts of sessiond and php-fpm"
# DokuWiki trusts the login it keeps in the session for auth_security_timeout
# (15 min) and then re-checks its own login cookie, encrypted with a secret
# bound to session_id(): with the timeout past (-1, its config only), it
# still decrypts, so session_id() is the same as at the login, restarts between.
printf '$conf["auth_security_timeout"] = -1;\n' >>/etc/dokuwiki/local.php
expect_logged_in "after DokuWiki re-checked its login cookie"

# --- Logout (a form with the session's CSRF token).
TOK=$(sectok)
[ -n "$TOK" ] || fail "no security token on the page of a logged-in user"
wiki "id=start&do=logout&sectok=$TOK"
wiki "id=start"
! logged_in || fail "still logged in after the logout"
grep -q 'do=login' "$DIR/body" || fail "no login link after the logout"
case $(auth) in *'"user":'*) fail "the session still holds the login: $(auth | head -c 300)" ;; esac

! grep -qE $'\t(DokuWiki|PHPSESSID)\t' "$JAR" || fail "the jar holds PHP's own session cookie"
[ -z "$(ls -A "$FILES")" ] || fail "PHP made session files: $(ls "$FILES")"
exit 0
