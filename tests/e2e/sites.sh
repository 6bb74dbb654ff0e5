#!/bin/bash
# Sites (SESSION_SITE) through real nginx and one sessiond on SQLite: a store
# of the schema before sites migrates and its visitor stays logged in on the
# default site; the same cookie value forged across sites gives no data of
# the other site; per-site cookie names side by side on one host; a site's
# idle timeout shorter than the process's; `sessiond list --site`.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# --- A store of schema version 2 (before sites), with a logged-in visitor.
OLD_ID=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')
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
     INSERT INTO sessions VALUES (sha3('$OLD_ID', 256), unixepoch(), unixepoch(), unixepoch() + 600);
     INSERT INTO items VALUES (sha3('$OLD_ID', 256), 'UserName', 'olga');" ||
  fail "could not make a store of schema version 2"

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
start_sessiond a --idle-timeout 20m
start_nginx a

expect_eq "$(sql 'PRAGMA user_version')" 3 "schema version after the migration"
get_cookie "sid=$OLD_ID" /home
expect_body "Hello, <b>olga</b>" "the visitor of the old store, on the default site"

# --- Per-site cookies side by side in one browser.
login ann
home_id=$(cookie sid)
[ -n "$home_id" ] || fail "login set no sid"
get /shop/set?cart=3
shop_id=$(cookie shop_sid)
[ -n "$shop_id" ] || fail "the shop set no shop_sid: $(header Set-Cookie)"
expect_eq "$(cookie sid)" "$home_id" "the default site's cookie after a visit to the shop"
get /blog/set?theme=dark
[ -n "$(cookie blog_sid)" ] || fail "the blog set no blog_sid"
get /shop/dump
expect_body "SESSION_VAR_cart=3" "the shop's session, beside the others"
expect_no_body "UserName" "the shop sees the default site's session"
expect_no_body "theme" "the shop sees the blog's session"
get /home
expect_body "Hello, <b>ann</b>" "the default site's session, beside the others"
get /blog/dump
expect_body "SESSION_VAR_theme=dark" "the blog's session, beside the others"
expect_eq "$(sql "SELECT count(*) FROM sessions WHERE id_hash = sha3('shop:$shop_id', 256) AND site = 'shop'")" 1 \
  "the shop's session under the digest of shop:id"

# --- The same cookie value across sites: never the other site's data.
get_cookie "blog_sid=$shop_id" /blog/dump
expect_body "SESSION_NEW=1" "the shop's id on the blog"
expect_no_body "cart" "the shop's id on the blog"
get_cookie "sid=$shop_id" /forum/dump
expect_body "SESSION_NEW=1" "the shop's id on the forum, under the default cookie name"
get_cookie "sid=$home_id" /forum/dump
expect_body "SESSION_NEW=1" "the default site's id on the forum"
expect_no_body "ann" "the default site's id on the forum"
get_cookie "shop_sid=$home_id" /shop/dump
expect_no_body "ann" "the default site's id on the shop"
get_cookie "sid=$shop_id" /home
expect_body "Anonymous User" "the shop's id on the default site"
# A write there makes a new session of that site; the shop's is untouched.
get_cookie "blog_sid=$shop_id" /blog/set?cart=stolen
forged=$(cookie blog_sid "$DIR/other-jar")
[ -n "$forged" ] && [ "$forged" != "$shop_id" ] || fail "a write with the shop's id on the blog: cookie '$forged'"
get /shop/dump
expect_body "SESSION_VAR_cart=3" "the shop's session after the forged write"

# --- A site's idle timeout shorter than the process's.
get /quick/set?k=v
[ -n "$(cookie quick_sid)" ] || fail "the quick site set no quick_sid"
expect_eq "$(sql "SELECT expires - accessed FROM sessions WHERE site = 'quick'")" 2 "the quick site's stored expiry"
get /quick/dump
expect_body "SESSION_VAR_k=v" "the quick site's session at once"
# Wait, without a request (a read would refresh it), for its expiry to pass:
# polled on the store's clock for up to 10 s.
for _ in $(seq 100); do
  [ "$(sql "SELECT expires <= unixepoch() FROM sessions WHERE site = 'quick'")" = 1 ] && break
  sleep 0.1
done
get /quick/dump
expect_body "SESSION_NEW=1" "the quick site's session after its 2 s idle timeout"
get /home
expect_body "Hello, <b>ann</b>" "the default site's session, under the process's 20 minutes"
get /greedy/dump
expect_status 500 "a site idle timeout above --idle-timeout"
grep -q "SESSION_IDLE_TIMEOUT" "$DIR"/a.log || fail "the 500 of a site timeout was not logged with its parameter"

# --- The commands see one site at a time.
shop_tag=$(sql "SELECT lower(substr(hex(id_hash), 1, 8)) FROM sessions WHERE site = 'shop'")
home_tag=$(sql "SELECT lower(substr(hex(sha3('$home_id', 256)), 1, 8))")
out=$("$SESSIOND" list --db "$DB" --site shop) || fail "list --site shop failed"
echo "$out" | grep -q "^$shop_tag " || fail "list --site shop lacks the shop's session: $out"
[ "$(echo "$out" | wc -l)" = 2 ] || fail "list --site shop shows more than the shop's session: $out"
out=$("$SESSIOND" list --db "$DB") || fail "list failed"
echo "$out" | grep -q "^$home_tag " || fail "list lacks the default site's session: $out"
echo "$out" | grep -q "^$shop_tag " && fail "list without --site shows the shop's session: $out"
"$SESSIOND" logout --db "$DB" --site shop --where cart=3 >/dev/null || fail "logout --site shop failed"
get /shop/dump
expect_body "SESSION_NEW=1" "the shop's session after logout --site shop"
get /home
expect_body "Hello, <b>ann</b>" "the default site's session after logout --site shop"
exit 0
