#!/bin/bash
# One visitor's counter, written in sh, Python, Perl (each on its helper)
# and PHP (php-fpm, the bridge), counting in turn in one session: each reads
# what the one before wrote, whichever type it stored it as (sh and Perl a
# string, Python and PHP a JSON number), and the count ends at 8, twice
# round. The same through a PHP pool of 2.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www
stack_php_fpm php "pm.max_children = 2" || fail "php-fpm did not start"
stack_php_location "$WWW" php
restart --app "php=unix:$DIR/php.sock"
start_nginx a

n=0
for round in 1 2; do
  for page in helper helper.py helper.pl counter_php; do
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
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions"
exit 0
