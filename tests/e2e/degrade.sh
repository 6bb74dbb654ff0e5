#!/bin/bash
# SESSION_STATUS and SESSION_ON_STORE_ERROR degrade (docs/running.md, "When
# the store is out of reach"), through real nginx (fastcgi_param) and real
# Apache (SetEnv), on SQLite and on PostgreSQL: a page is told new, ok,
# expired and regenerated; with the store out of reach a degrade location
# runs its page with SESSION_STATUS=unavailable, no session and no
# Set-Cookie, a default (fail) location gets 503, and a degrade page that
# sends a directive gets 503 with Retry-After, one log line, nothing stored;
# once the store is back the session is as it was. Then a PHP page through
# php-fpm and the bridge.
# Out of reach: PostgreSQL's cluster stopped. SQLite: another writer holding
# the file past --busy-timeout, which a read does not notice (WAL: a load
# reads on) but an exclusive route's lock, a write, does: there the degrade
# locations are exclusive ones.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
command -v apache2 >/dev/null || fail "apache2 is not installed (scripts/install-deps installs it)"

cat >"$PAGES/status" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'status=%s new=%s session=%s\n' "${SESSION_STATUS-<unset>}" "${SESSION_NEW-<unset>}" "${HTTP_SESSION-<unset>}"
EOF
chmod 755 "$PAGES/status"

# /degrade/PAGE runs PAGE with SESSION_ON_STORE_ERROR degrade, /xdegrade/PAGE
# the same in exclusive mode, /x/PAGE in exclusive mode alone (fail, the
# default); anything else is the snippet's location (write, fail).
ROUTES=("degrade SESSION_ON_STORE_ERROR degrade" "xdegrade SESSION_MODE exclusive
SESSION_ON_STORE_ERROR degrade" "x SESSION_MODE exclusive")
for route in "${ROUTES[@]}"; do
  name=${route%% *}
  cat <<EOF
location ~ ^/$name(/[a-z]+)\$ {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$1;
$(echo "${route#* }" | sed 's/^/    fastcgi_param /; s/$/;/')
    fastcgi_pass sessiond;
}
EOF
done >"$DIR/nginx-extra-degrade.conf.in"
for route in "${ROUTES[@]}"; do
  name=${route%% *}
  printf 'Alias /%s/ "%s/"\n<Location "/%s/">\n%s\n</Location>\n' "$name" "$PAGES" "$name" \
    "$(echo "${route#* }" | sed 's/^/    SetEnv /')"
done >"$DIR/apache-extra-degrade.conf.in"

log_since() { tail -n +"$(($1 + 1))" "$DIR/a.log"; }
# A well-formed id no store ever issued: a session that has ended.
GONE=$(printf 'A%.0s' $(seq 43))

# SQLite out of reach: an operator's sqlite3 shell holding the write lock.
# PostgreSQL: the cluster stopped.
store_down() {
  if [ "$STORE" = SQLite ]; then
    hold_write_lock
  else
    "$PG_CLUSTER" stop "$PGDIR"
    "$PG_CLUSTER" pid "$PGDIR" >/dev/null && fail "the cluster did not stop"
  fi
}
store_up() {
  if [ "$STORE" = SQLite ]; then
    release_write_lock
  else
    "$PG_CLUSTER" start "$PGDIR" >/dev/null || fail "the PostgreSQL cluster did not start again"
  fi
}

# degrade SERVER: the statuses and a store outage through SERVER (nginx or
# apache), on the store in $DB.
degrade() {
  server=$1
  rm -f "$JAR" "$DIR"/*-extra-degrade.conf
  restart --busy-timeout 200ms
  if [ "$server" = nginx ]; then
    cp "$DIR/nginx-extra-degrade.conf.in" "$DIR/nginx-extra-degrade.conf"
    start_nginx a
  else
    cp "$DIR/apache-extra-degrade.conf.in" "$DIR/apache-extra-degrade.conf"
    stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
  fi
  at="$server on $STORE"

  # The statuses, on either kind of location.
  get /degrade/status
  expect_body "^status=new new=1 session=$" "a first visit ($at)"
  get "/set?k=v"
  expect_status 200 "a write ($at)"
  get /degrade/status
  expect_body "^status=ok new=0 session=k=v$" "a visitor with a session ($at)"
  get_cookie "sid=$GONE" /status
  expect_body "^status=expired new=1 session=$" "a cookie naming no live session ($at)"
  get_cookie "sid=garbage" /status -H "Session-Status: ok"
  expect_body "^status=new new=1 session=$" "a malformed cookie, and a client's Session-Status ($at)"
  old=$(cookie)
  get "/directive?X-Session-Regenerate=1"
  expect_status 200 "a login ($at)"
  [ "$(cookie)" != "$old" ] || fail "the login kept the id ($at)"
  get_cookie "sid=$old" /status
  expect_body "^status=regenerated new=0 session=k=v$" "the old id within its grace ($at)"

  store_down
  # The degrade locations that notice: both on PostgreSQL, the exclusive
  # one on SQLite (whose write location reads on: told ok, a change a 503
  # at its commit, as on any location).
  degraded=/xdegrade
  [ "$STORE" = SQLite ] || degraded="/degrade /xdegrade"
  for route in $degraded; do
    get $route/status
    expect_status 200 "$route with the store out of reach ($at)"
    expect_body "^status=unavailable new=1 session=$" "$route with the store out of reach ($at)"
    [ -z "$(header Set-Cookie)" ] || fail "a degraded request sent a cookie ($at)"
    # A change cannot be kept: 503 with Retry-After, the page's body
    # withheld, one line saying so.
    before=$(wc -l <"$DIR/a.log")
    get "$route/set?k=lost"
    expect_status 503 "$route: a change with the store out of reach ($at)"
    expect_eq "$(header Retry-After)" 1 "Retry-After of a refused change ($at)"
    expect_no_body stored "a refused change ($at)"
    [ -z "$(header Set-Cookie)" ] || fail "a refused change sent a cookie ($at)"
    expect_eq "$(log_since "$before" | grep -c 'asked for a change of the session while the store is out of reach')" 1 \
      "log lines of a refused change ($at)"
  done
  get /x/status
  expect_status 503 "an exclusive fail location with the store out of reach ($at)"
  if [ "$STORE" = SQLite ]; then
    get /degrade/status
    expect_body "^status=ok new=0 session=k=v$" "a write degrade location reads on ($at)"
  else
    get /status
    expect_status 503 "a fail location with the store out of reach ($at)"
  fi
  store_up

  get /degrade/status
  expect_status 200 "a degrade page with the store back ($at)"
  expect_body "^status=ok new=0 session=k=v$" "the session with the store back: nothing stored ($at)"
  get "/degrade/set?k=kept"
  expect_status 200 "a degrade page's change with the store back ($at)"
  get /status
  expect_body "^status=ok new=0 session=k=kept$" "a degrade page's change with the store back ($at)"

  stop_web "$server"
}

STORE=SQLite
degrade nginx
degrade apache

# --- PHP through the bridge: sessiond_status(), and a change refused -------
mkdir -p "$DIR/degrade_php"
cat >"$DIR/degrade_php/user.php" <<'EOF'
<?php
session_start();
header('Content-Type: text/plain');
echo 'status=', var_export(sessiond_status(), true), "\n";
echo 'user=', $_SESSION['user'] ?? '<none>', "\n";
if (isset($_GET['user'])) {
    $_SESSION['user'] = $_GET['user'];
}
EOF
php_www "$DIR/degrade_php"
stack_php_fpm php || fail "php-fpm did not start"
# /degrade/NAME, /fail/NAME and /off/NAME run $WWW/NAME.php in php-fpm.
# Exclusive, so that SQLite's held write lock reaches them (above).
for route in "degrade SESSION_MODE exclusive
SESSION_ON_STORE_ERROR degrade" "fail SESSION_MODE exclusive" "off SESSION_MODE off"; do
  name=${route%% *}
  cat <<EOF
location ~ ^/$name/([a-z]+)\$ {
    root $WWW;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root/\$1.php;
    fastcgi_param SESSIOND_APP php;
$(echo "${route#* }" | sed 's/^/    fastcgi_param /; s/$/;/')
    fastcgi_pass sessiond;
}
EOF
done >"$DIR/nginx-extra-degrade.conf"
rm -f "$JAR"
restart --busy-timeout 200ms --app "php=unix:$DIR/php.sock"
start_nginx a
get "/degrade/user?user=ann"
expect_status 200 "PHP login"
expect_body "^status='new'$" "PHP on a first visit"
get /degrade/user
expect_body "^status='ok'$" "PHP with a session"
expect_body "^user=ann$" "PHP with a session"
get /off/user
expect_body "^status=NULL$" "PHP on an off route"
store_down
get /degrade/user
expect_status 200 "PHP on a degrade route with the store out of reach"
expect_body "^status='unavailable'$" "PHP on a degrade route with the store out of reach"
expect_body "^user=<none>$" "PHP on a degrade route with the store out of reach"
get /fail/user
expect_status 503 "PHP on a fail route with the store out of reach"
before=$(wc -l <"$DIR/a.log")
get "/degrade/user?user=eve"
expect_status 503 "a PHP change with the store out of reach"
expect_eq "$(header Retry-After)" 1 "Retry-After of a refused PHP change"
expect_no_body "user=" "a refused PHP change (its body withheld)"
expect_eq "$(log_since "$before" | grep -c 'app php asked for a change of the session while the store is out of reach')" 1 \
  "log lines of a refused PHP change"
store_up
get /degrade/user
expect_body "^status='ok'$" "PHP with the store back"
expect_body "^user=ann$" "PHP with the store back: nothing stored"
stack_kill TERM "$STACK_NGINX_PID" || fail "nginx did not stop cleanly"
rm -f "$DIR/nginx-extra-degrade.conf"

pg_start
URI="postgresql://sessiond:$(cut -d: -f5 "$PGDIR/pgpass")@127.0.0.1:$(cat "$PGDIR/port")/sessions?connect_timeout=2"
DB=$URI
STORE=PostgreSQL
degrade nginx
degrade apache

# PostgreSQL down when sessiond starts: a degrade location serves its pages
# from the first request on, and the session once the database is up.
store_down
cp "$DIR/nginx-extra-degrade.conf.in" "$DIR/nginx-extra-degrade.conf"
restart --busy-timeout 200ms
start_nginx a
get /degrade/status
expect_status 200 "a degrade page with the database down at boot"
expect_body "^status=unavailable new=1 session=$" "a degrade page with the database down at boot"
get /status
expect_status 503 "a fail page with the database down at boot"
store_up
get /degrade/status
expect_body "^status=ok new=0 session=k=kept$" "a degrade page once the database is up"
exit 0
