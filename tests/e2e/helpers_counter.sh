#!/bin/bash
# One visitor's counter, written in sh, Python, Perl (each on its helper)
# and PHP (php-fpm with a pool of 2, the bridge), counting in turn in one
# session: each reads what the one before wrote, whichever type it stored it
# as (sh and Perl a string, Python and PHP a JSON number), and the count
# ends at 8, twice round; through nginx on SQLite. Then the three helpers'
# counters again through Apache on PostgreSQL, and with the database
# stopped, each helper's status unavailable on a degrade location.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www
stack_php_fpm php "pm.max_children = 2" || fail "php-fpm did not start"
stack_php_location "$WWW" php
restart --app "php=unix:$DIR/php.sock"
start_nginx a

# count_rounds PAGE...: two rounds of the counters these pages are, in one
# session from 0; each time sh's helper reads the count with its type.
count_rounds() {
  local n=0 round page path lang type
  rm -f "$JAR"
  for round in 1 2; do
    for page; do
      n=$((n + 1))
      case $page in counter_php) path=/counter_php ;; *) path="/$page?count" ;; esac
      post "$path"
      expect_status 200 "$page, count $n"
      lang=$(body | cut -d' ' -f1)
      expect_eq "$(body | cut -d' ' -f2)" "$n" "the count of $lang in round $round"
      case $page in helper | helper.pl) type=string ;; *) type=json ;; esac
      # The sh helper's page answers the type and the bytes in hex.
      get "/helper?get" --data-urlencode k=visits
      expect_eq "$(body)" "$type $(printf '%s' "$n" | od -An -v -tx1 | tr -d ' \n')" "visits as sh reads it after $lang"
    done
  done
}
count_rounds helper helper.py helper.pl counter_php
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions"

# --- Apache, PostgreSQL.
stack_stop
pg_start
DB="postgresql://sessiond:$(cut -d: -f5 "$PGDIR/pgpass")@127.0.0.1:$(cat "$PGDIR/port")/sessions?connect_timeout=2"
A=""
restart
# /degrade/PAGE: PAGE on a location that runs it without its session while
# the store is out of reach.
printf 'Alias /degrade/ "%s/"\n<Location "/degrade/">\n    SetEnv SESSION_ON_STORE_ERROR degrade\n</Location>\n' \
  "$PAGES" >"$DIR/apache-extra-helpers.conf"
unset STACK_PORT
stack_apache "$PAGES" "unix:$DIR/a.sock" || fail "apache did not start"
count_rounds helper.pl helper helper.py

# --- The database stopped: each helper tells its page the store is
# unavailable and that no change may be sent (one sent is a 503).
"$PG_CLUSTER" stop "$PGDIR"
for page in helper helper.py helper.pl; do
  post "/degrade/$page?status"
  expect_status 200 "$page on a degrade location, the database down"
  expect_body '^status=unavailable$' "$page: the status with the database down"
  expect_body '^writable=no$' "$page: writable with the database down"
  post "/degrade/$page?count"
  expect_status 503 "$page: a change with the database down"
done
exit 0
