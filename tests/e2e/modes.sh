#!/bin/bash
# SESSION_MODE per location (docs/running.md, "Per-route session behaviour"),
# through real nginx (fastcgi_param) and real Apache (SetEnv), on SQLite and
# on PostgreSQL: off sends no Set-Cookie and never reaches the store (a
# stopped database still serves it); read injects the session and never
# writes it (the stored row unchanged, its last access too), a directive
# there is a 502 naming the mode and the session stays as it was;
# SESSION_READ_TOUCH on refreshes the last access and nothing else; write as
# before; a client's "Session-Mode:" header changes nothing; an unknown mode
# is a 500 with one log line naming it. Then a PHP read route through php-fpm.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# refused MODE PATH WHAT: a session directive on a MODE route is a 502, with
# no cookie and exactly one log line naming the mode ($at: where, set below).
refused() {
  local before
  before=$(wc -l <"$DIR/a.log")
  get "$2"
  expect_status 502 "$3 on a $1 route ($at)"
  [ -z "$(header Set-Cookie)" ] || fail "$3 on a $1 route sent a cookie ($at)"
  expect_eq "$(log_since "$before" | wc -l)" 1 "log lines of $3 on a $1 route ($at)"
  log_since "$before" | grep -q "SESSION_MODE is $1" || fail "the 502's line does not name the mode: $(log_since "$before")"
}
command -v apache2 >/dev/null || fail "apache2 is not installed (scripts/install-deps installs it)"

# What a page learns of its session.
cat >"$PAGES/mode" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'SESSION_MODE=%s\n' "${SESSION_MODE-<unset>}"
printf 'SESSION_ID=%s\n' "${SESSION_ID+<set>}"
printf 'SESSION_NEW=%s\n' "${SESSION_NEW-<unset>}"
printf 'HTTP_SESSION=%s\n' "${HTTP_SESSION-<unset>}"
EOF
chmod 755 "$PAGES/mode"

# /off/PAGE, /read/PAGE, /touch/PAGE (read, SESSION_READ_TOUCH on) and
# /bogus/PAGE run PAGE with that mode; anything else is the snippet's write.
{
  for route in "off SESSION_MODE off" "read SESSION_MODE read" "touch SESSION_MODE read;
    fastcgi_param SESSION_READ_TOUCH on" "bogus SESSION_MODE readonly" "shop SESSION_SITE shop;
    fastcgi_param SESSION_COOKIE shop_sid"; do
    set -- $route
    name=$1; shift
    cat <<EOF
location ~ ^/$name(/[a-z]+)\$ {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$1;
    fastcgi_param $*;
    fastcgi_pass sessiond;
}
EOF
  done
} >"$DIR/nginx-extra-modes.conf.in"
cat >"$DIR/apache-extra-modes.conf.in" <<EOF
Alias /off/ "$PAGES/"
Alias /read/ "$PAGES/"
Alias /touch/ "$PAGES/"
Alias /bogus/ "$PAGES/"
Alias /shop/ "$PAGES/"
<Location "/off/">
    SetEnv SESSION_MODE off
</Location>
<Location "/read/">
    SetEnv SESSION_MODE read
</Location>
<Location "/touch/">
    SetEnv SESSION_MODE read
    SetEnv SESSION_READ_TOUCH on
</Location>
<Location "/bogus/">
    SetEnv SESSION_MODE readonly
</Location>
<Location "/shop/">
    SetEnv SESSION_SITE shop
    SetEnv SESSION_COOKIE shop_sid
</Location>
EOF

# q SQL: one value from the store, whichever engine it is.
q() {
  if [ -n "${URI:-}" ]; then psql -X -q -At "$("$PG_CLUSTER" uri "$PGDIR")" -c "$1"
  else sql "$1"; fi
}
# The stored session, as one line: its last access and its items.
row() { q "SELECT accessed FROM sessions"; q "SELECT key, value FROM items ORDER BY key" | tr '\n' ' '; }
# log_lines_since N: the log's lines after line N.
log_since() { tail -n +"$(($1 + 1))" "$DIR/a.log"; }

# modes SERVER: every mode through SERVER (nginx or apache), on the store in $DB.
modes() {
  server=$1
  rm -f "$JAR" "$DIR"/*-extra-modes.conf
  restart
  if [ "$server" = nginx ]; then
    cp "$DIR/nginx-extra-modes.conf.in" "$DIR/nginx-extra-modes.conf"
    start_nginx a
  else
    cp "$DIR/apache-extra-modes.conf.in" "$DIR/apache-extra-modes.conf"
    stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
  fi
  at="$server on $STORE"
  q "DELETE FROM sessions"  # one visitor's session in the store: this run's

  # write: as before; the page is told its mode.
  get "/set?k=v"
  expect_status 200 "write ($at)"
  [ -n "$(cookie)" ] || fail "write set no cookie ($at)"
  get /mode
  expect_body "^SESSION_MODE=write$" "write's mode ($at)"
  expect_body "^HTTP_SESSION=k=v$" "write's session ($at)"
  # A client's Session-Mode header is HTTP_SESSION_MODE: no effect.
  get "/set?k=w" -H "Session-Mode: off"
  expect_status 200 "write with a client's Session-Mode: off ($at)"
  get /read/mode -H "Session-Mode: write"
  expect_body "^SESSION_MODE=read$" "read with a client's Session-Mode: write ($at)"
  expect_body "^HTTP_SESSION=k=w$" "the write with Session-Mode: off was stored ($at)"

  # off: no session, no cookie, nothing stored.
  get /off/mode
  expect_status 200 "off ($at)"
  expect_body "^SESSION_MODE=off$" "off ($at)"
  expect_body "^SESSION_ID=$" "off: no SESSION_ID ($at)"
  expect_body "^SESSION_NEW=<unset>$" "off: no SESSION_NEW ($at)"
  expect_body "^HTTP_SESSION=<unset>$" "off: no HTTP_SESSION ($at)"
  [ -z "$(header Set-Cookie)" ] || fail "off sent a cookie ($at)"
  rm -f "$DIR/new-jar"
  _curl /off/mode -c "$DIR/new-jar"
  [ -z "$(header Set-Cookie)" ] || fail "off sent a new visitor a cookie ($at)"
  refused off "/off/set?k=off" "a directive"

  # read: injected, never written; a directive is a 502 and keeps nothing.
  q "UPDATE sessions SET accessed = accessed - 1000"  # past the touch interval
  stored=$(row)
  get /read/mode
  expect_status 200 "read ($at)"
  expect_body "^SESSION_MODE=read$" "read ($at)"
  expect_body "^HTTP_SESSION=k=w$" "read's session ($at)"
  expect_body "^SESSION_NEW=0$" "read's session ($at)"
  [ -z "$(header Set-Cookie)" ] || fail "read sent a cookie ($at)"
  expect_eq "$(row)" "$stored" "the stored session after a read ($at)"
  for directive in "X-Session-Set=k=r" "X-Session-Abandon=1" "X-Session-Regenerate=1" "X-Session-Clear=1"; do
    refused read "/read/directive?$directive" "$directive"
    expect_eq "$(row)" "$stored" "the stored session after $directive on a read route ($at)"
  done
  # SESSION_READ_TOUCH on: the last access moves, nothing else.
  get /touch/mode
  expect_status 200 "read with touch ($at)"
  expect_body "^HTTP_SESSION=k=w$" "read with touch ($at)"
  [ "$(q "SELECT accessed FROM sessions")" -gt "${stored%%$'\n'*}" ] || fail "read touch did not refresh the last access ($at)"
  expect_eq "$(q "SELECT key, value FROM items ORDER BY key" | tr '\n' ' ')" "${stored#*$'\n'}" "items after a read touch ($at)"

  # An unknown mode: 500, one log line naming it, the page never runs.
  before=$(wc -l <"$DIR/a.log")
  get "/bogus/set?k=bogus"
  expect_status 500 "an unknown SESSION_MODE ($at)"
  expect_eq "$(log_since "$before" | wc -l)" 1 "log lines of an unknown SESSION_MODE ($at)"
  log_since "$before" | grep -q "SESSION_MODE 'readonly' is not understood" ||
    fail "the 500's line does not name the mode: $(log_since "$before")"
  get /mode
  expect_body "^HTTP_SESSION=k=w$" "the session after an unknown mode ($at)"

  # A site (SESSION_SITE, its own cookie): the default site's id forged into
  # the shop's cookie names nothing there; the shop's write makes its own.
  _curl /shop/mode -H "Cookie: shop_sid=$(cookie)"
  expect_body "^SESSION_NEW=1$" "another site's id on the shop ($at)"
  expect_body "^HTTP_SESSION=$" "another site's id on the shop ($at)"
  get "/shop/set?cart=3"
  [ -n "$(cookie shop_sid)" ] || fail "the shop set no shop_sid ($at): $(header Set-Cookie)"
  [ "$(cookie shop_sid)" != "$(cookie)" ] || fail "the shop's id is the default site's ($at)"
  get /shop/mode
  expect_body "^HTTP_SESSION=cart=3$" "the shop's session ($at)"
  get /mode
  expect_body "^HTTP_SESSION=k=w$" "the default site's session beside the shop's ($at)"
  q "DELETE FROM sessions WHERE site = 'shop'"

  stop_web "$server"
}

STORE=SQLite
modes nginx
modes apache

# --- PHP through the bridge: a read route reads, and refuses a change --------
mkdir -p "$DIR/modes_php"
cat >"$DIR/modes_php/user.php" <<'EOF'
<?php
session_start();
header('Content-Type: text/plain');
echo 'mode=', $_SERVER['SESSION_MODE'] ?? '<unset>', "\n";
echo 'user=', $_SESSION['user'] ?? '<none>', "\n";
if (isset($_GET['user'])) {
    $_SESSION['user'] = $_GET['user'];
}
if (isset($_GET['logout'])) {
    session_destroy();
}
EOF
php_www "$DIR/modes_php"
stack_php_fpm php || fail "php-fpm did not start"
cat >"$DIR/nginx-extra-modes.conf" <<EOF
location ~ ^/(read|off|write)/([a-z]+)\$ {
    root $WWW;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/\$2.php;
    fastcgi_param SESSIOND_APP php;
    fastcgi_param SESSION_MODE \$1;
    fastcgi_pass sessiond;
}
location ~ ^/shop/([a-z]+)\$ {
    root $WWW;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/\$1.php;
    fastcgi_param SESSIOND_APP php;
    fastcgi_param SESSION_SITE shop;
    fastcgi_param SESSION_COOKIE shop_sid;
    fastcgi_pass sessiond;
}
EOF
rm -f "$JAR"
restart --app "php=unix:$DIR/php.sock"
start_nginx a
get "/write/user?user=ann"
expect_status 200 "PHP login"
expect_body "^mode=write$" "PHP on a write route"
get /read/user
expect_status 200 "PHP read route"
expect_body "^mode=read$" "PHP read route"
expect_body "^user=ann$" "PHP read route"
[ -z "$(header Set-Cookie)" ] || fail "a PHP read route sent a cookie"
for change in "user=bob" "logout=1"; do
  before=$(wc -l <"$DIR/php.log")
  get "/read/user?$change"
  expect_status 500 "PHP read route asked for $change"
  expect_no_body "user=" "PHP read route asked for $change (its body withheld)"
  tail -n +"$((before + 1))" "$DIR/php.log" | grep -q "cannot change on this route (SESSION_MODE read" ||
    fail "PHP's log does not say why $change was refused: $(tail -n 5 "$DIR/php.log")"
done
get /read/user
expect_body "^user=ann$" "the session after refused changes on a PHP read route"
# off: an empty session that cannot be changed, and no cookie.
get /off/user
expect_status 200 "PHP off route"
expect_body "^mode=off$" "PHP off route"
expect_body "^user=<none>$" "PHP off route"
[ -z "$(header Set-Cookie)" ] || fail "a PHP off route sent a cookie"
get "/off/user?user=eve"
expect_status 500 "PHP off route asked for a change"
get /write/user
expect_body "^user=ann$" "the session after a PHP off route"
# A site (SESSION_SITE) through PHP's own session API: its own cookie and
# session beside the default site's; the default site's id forged into its
# cookie names nothing; its logout leaves the default site logged in.
_curl /shop/user -H "Cookie: shop_sid=$(cookie)"
expect_body "^user=<none>$" "another site's id on a PHP site route"
get "/shop/user?user=sam"
[ -n "$(cookie shop_sid)" ] || fail "the PHP site route set no shop_sid: $(header Set-Cookie)"
get /shop/user
expect_body "^user=sam$" "the PHP site's session"
get /write/user
expect_body "^user=ann$" "the default site's session beside the PHP site's"
get "/shop/user?logout=1"
expect_status 200 "the PHP site's logout"
get /shop/user
expect_body "^user=<none>$" "the PHP site after its logout"
get /write/user
expect_body "^user=ann$" "the default site after the PHP site's logout"
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop cleanly"
rm -f "$DIR/nginx-extra-modes.conf"

pg_start
URI="postgresql://sessiond:$(cut -d: -f5 "$PGDIR/pgpass")@127.0.0.1:$(cat "$PGDIR/port")/sessions?connect_timeout=2"
DB=$URI
STORE=PostgreSQL
modes nginx
modes apache

# A store that cannot be reached: off routes are served as ever, the rest 503.
cp "$DIR/apache-extra-modes.conf.in" "$DIR/apache-extra-modes.conf"
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
"$PG_CLUSTER" stop "$PGDIR"
"$PG_CLUSTER" pid "$PGDIR" >/dev/null && fail "the cluster did not stop"
get /off/mode
expect_status 200 "off with the database stopped"
expect_body "^SESSION_MODE=off$" "off with the database stopped"
get /mode
expect_status 503 "write with the database stopped"
get /read/mode
expect_status 503 "read with the database stopped"
stack_kill TERM "$STACK_APACHE_PID" || fail "apache did not stop cleanly"
exit 0
