#!/bin/bash
# Sites (SESSION_SITE) through real nginx and one sessiond, on SQLite and on
# PostgreSQL (a private cluster): a store of the schema before sites migrates
# and its visitor stays logged in on the default site; the same cookie value
# forged across sites gives no data of the other site; per-site cookie names
# side by side on one host; a site's idle timeout shorter than the process's;
# `sessiond list --site` and `logout --site`.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# Locations /SITE/PAGE run PAGE as site SITE.
site_location() {  # site_location SITE [NGINX PARAMETERS...]
  local site=$1
  shift
  echo "location ~ ^/$site/(\\w+)\$ {"
  echo "    include /etc/nginx/fastcgi_params;"
  echo "    fastcgi_param SCRIPT_FILENAME \$document_root/\$1;"
  echo "    fastcgi_param SESSION_SITE $site;"
  for p in "$@"; do echo "    fastcgi_param $p;"; done
  echo "    fastcgi_pass sessiond;"
  echo "}"
}
{
  site_location shop "SESSION_COOKIE shop_sid"
  site_location blog "SESSION_COOKIE blog_sid"
  site_location forum  # the default cookie name, sid, as the default site's
  site_location quick "SESSION_COOKIE quick_sid" "SESSION_IDLE_TIMEOUT 2s"
  site_location greedy "SESSION_IDLE_TIMEOUT 2h"  # above --idle-timeout: refused
} >"$DIR/nginx-extra-sites.conf"

new_id() { python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))'; }
sha3() { python3 -c 'import hashlib, sys; print(hashlib.sha3_256(sys.argv[1].encode()).hexdigest())' "$1"; }
# The digests `sessiond list ARGS...` shows, one a line.
listed() {
  "$SESSIOND" list --db "$DB" --json "$@" | python3 -c 'import json, sys; [print(s["digest"]) for s in json.load(sys.stdin)]' ||
    fail "sessiond list $* failed"
}

# check_sites ENGINE: $DB holds a store of the schema before sites, with
# $OLD_ID logged in as olga; `store_sql` runs SQL on it.
check_sites() {
  local engine=$1
  rm -f "$JAR"
  : >"$DIR/a.log"
  start_sessiond a --idle-timeout 20m
  start_nginx a
  get_cookie "sid=$OLD_ID" /home
  expect_body "Hello, <b>olga</b>" "$engine: the visitor of the old store, on the default site"

  # --- Per-site cookies side by side in one browser.
  login ann
  local home_id shop_id
  home_id=$(cookie sid)
  [ -n "$home_id" ] || fail "$engine: login set no sid"
  get /shop/set?cart=3
  shop_id=$(cookie shop_sid)
  [ -n "$shop_id" ] || fail "$engine: the shop set no shop_sid: $(header Set-Cookie)"
  expect_eq "$(cookie sid)" "$home_id" "$engine: the default site's cookie after a visit to the shop"
  get /blog/set?theme=dark
  [ -n "$(cookie blog_sid)" ] || fail "$engine: the blog set no blog_sid"
  get /shop/dump
  expect_body "SESSION_VAR_cart=3" "$engine: the shop's session, beside the others"
  expect_no_body "UserName" "$engine: the shop sees the default site's session"
  expect_no_body "theme" "$engine: the shop sees the blog's session"
  get /home
  expect_body "Hello, <b>ann</b>" "$engine: the default site's session, beside the others"
  get /blog/dump
  expect_body "SESSION_VAR_theme=dark" "$engine: the blog's session, beside the others"
  listed --site shop >"$DIR/shop-digests"
  expect_eq "$(cat "$DIR/shop-digests")" "$(sha3 "shop:$shop_id")" \
    "$engine: list --site shop: the shop's session alone, under the digest of shop:id"

  # --- The same cookie value across sites: never the other site's data.
  get_cookie "blog_sid=$shop_id" /blog/dump
  expect_body "SESSION_NEW=1" "$engine: the shop's id on the blog"
  expect_no_body "cart" "$engine: the shop's id on the blog"
  get_cookie "sid=$shop_id" /forum/dump
  expect_body "SESSION_NEW=1" "$engine: the shop's id on the forum, under the default cookie name"
  get_cookie "sid=$home_id" /forum/dump
  expect_body "SESSION_NEW=1" "$engine: the default site's id on the forum"
  expect_no_body "ann" "$engine: the default site's id on the forum"
  get_cookie "shop_sid=$home_id" /shop/dump
  expect_no_body "ann" "$engine: the default site's id on the shop"
  get_cookie "sid=$shop_id" /home
  expect_body "Anonymous User" "$engine: the shop's id on the default site"
  # A write there makes a new session of that site; the shop's is untouched.
  get_cookie "blog_sid=$shop_id" /blog/set?cart=stolen
  local forged
  forged=$(cookie blog_sid "$DIR/other-jar")
  [ -n "$forged" ] && [ "$forged" != "$shop_id" ] ||
    fail "$engine: a write with the shop's id on the blog: cookie '$forged'"
  get /shop/dump
  expect_body "SESSION_VAR_cart=3" "$engine: the shop's session after the forged write"
  # A page of one site printing its Cookie header to stderr: every site's id is masked in the log.
  get_cookie "blog_sid=$forged; shop_sid=$shop_id; sid=$home_id" /blog/stderr
  expect_status 200 "$engine: a page printing its cookies to stderr"
  grep -q "HTTP_COOKIE=blog_sid=\[session id\]; shop_sid=\[session id\]; sid=\[session id\]" "$DIR/a.log" ||
    fail "$engine: the page's stderr line with every site's id masked is not in the log"
  grep -qe "$shop_id" -e "$home_id" "$DIR/a.log" && fail "$engine: another site's session id is in the log"

  # --- A site's idle timeout shorter than the process's.
  get /quick/set?k=v
  [ -n "$(cookie quick_sid)" ] || fail "$engine: the quick site set no quick_sid"
  expect_eq "$(store_sql "SELECT expires - accessed FROM sessions WHERE site = 'quick'")" 2 \
    "$engine: the quick site's stored expiry"
  get /quick/dump
  expect_body "SESSION_VAR_k=v" "$engine: the quick site's session at once"
  # Wait, without a request (a read would refresh it), for its expiry to
  # pass: polled for up to 10 s.
  for _ in $(seq 100); do
    [ "$(store_sql "SELECT count(*) FROM sessions WHERE site = 'quick' AND expires <= $(date +%s)")" = 1 ] && break
    sleep 0.1
  done
  get /quick/dump
  expect_body "SESSION_NEW=1" "$engine: the quick site's session after its 2 s idle timeout"
  get /home
  expect_body "Hello, <b>ann</b>" "$engine: the default site's session, under the process's 20 minutes"
  get /greedy/dump
  expect_status 500 "$engine: a site idle timeout above --idle-timeout"
  grep -q "SESSION_IDLE_TIMEOUT" "$DIR"/a.log || fail "$engine: the 500 of a site timeout was not logged"

  # --- The commands see one site at a time.
  listed >"$DIR/home-digests"
  grep -qx "$(sha3 "$home_id")" "$DIR/home-digests" || fail "$engine: list lacks the default site's session"
  grep -qx "$(sha3 "$OLD_ID")" "$DIR/home-digests" || fail "$engine: list lacks the old store's session"
  grep -qx "$(sha3 "shop:$shop_id")" "$DIR/home-digests" && fail "$engine: list without --site shows the shop's"
  "$SESSIOND" logout --db "$DB" --site shop --where cart=3 >/dev/null || fail "$engine: logout --site shop failed"
  get /shop/dump
  expect_body "SESSION_NEW=1" "$engine: the shop's session after logout --site shop"
  get /home
  expect_body "Hello, <b>ann</b>" "$engine: the default site's session after logout --site shop"
  stack_stop
}

# old_session: the INSERTs of olga's session of the old store.
old_session() {
  local hex
  hex=$(sha3 "$OLD_ID")
  echo "INSERT INTO sessions VALUES ($1'$hex'$2, $(date +%s), $(date +%s), $(($(date +%s) + 600)));
INSERT INTO items VALUES ($1'$hex'$2, $3'UserName'$4, $3'olga'$4);"
}

# --- SQLite: a store of schema version 2 (before sites), as sessiond made it.
OLD_ID=$(new_id)
store_sql() { sql "$@"; }
sql "CREATE TABLE sessions (id_hash BLOB PRIMARY KEY, created INTEGER NOT NULL, accessed INTEGER NOT NULL,
  expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions(expires);
CREATE TABLE items (id_hash BLOB NOT NULL REFERENCES sessions(id_hash) ON DELETE CASCADE ON UPDATE CASCADE,
  key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (id_hash, key)) WITHOUT ROWID;
CREATE TRIGGER sessions_delete_items AFTER DELETE ON sessions
  BEGIN DELETE FROM items WHERE id_hash = old.id_hash; END;
CREATE TRIGGER sessions_rename_items AFTER UPDATE OF id_hash ON sessions
  BEGIN UPDATE items SET id_hash = new.id_hash WHERE id_hash = old.id_hash; END;
PRAGMA user_version = 2;
$(old_session "X" "" "" "")" || fail "could not make a SQLite store of schema version 2"
check_sites SQLite
expect_eq "$(sql 'PRAGMA user_version')" 6 "SQLite: schema version after the migration"

# --- PostgreSQL: a database of schema version 1 (before sites), as sessiond made it.
pg_start
DB=$("$PG_CLUSTER" uri "$PGDIR")
OLD_ID=$(new_id)
store_sql() { psql -X -q -At "$DB" -c "$1"; }
psql -X -q -At "$DB" -v ON_ERROR_STOP=1 -c "CREATE TABLE sessions (id_hash bytea PRIMARY KEY,
  created bigint NOT NULL, accessed bigint NOT NULL, expires bigint NOT NULL);
CREATE INDEX sessions_by_expiry ON sessions (expires);
CREATE TABLE items (id_hash bytea NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE ON UPDATE CASCADE,
  key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (id_hash, key));
CREATE TABLE sessiond_schema (version integer NOT NULL);
INSERT INTO sessiond_schema VALUES (1);
$(old_session "decode(" ", 'hex')" "convert_to(" ", 'UTF8')")" >/dev/null ||
  fail "could not make a PostgreSQL database of schema version 1"
check_sites PostgreSQL
expect_eq "$(store_sql 'SELECT version FROM sessiond_schema')" 5 "PostgreSQL: schema version after the migration"
exit 0
