#!/bin/bash
# Values every language reads, through real nginx, sessiond, php-fpm and
# pages in sh and Python, on SQLite and on PostgreSQL: a PHP page stores an
# int and an array; the sh and Python counters read the int as 3 and count
# on, each storing a JSON number, which PHP reads as an int again; a Python
# page reads the array as {"apple":1} with its type; the store and
# `sessiond show` keep the type beside the value; a JSON directive that is
# not JSON is a 502 with nothing stored; a string set over a JSON item makes
# it a string; mod_session's HTTP_SESSION is unchanged; a session spilled to
# SESSION_FILE carries the types on the file's second line.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www
stack_php_fpm php "pm.max_children = 2" || fail "php-fpm did not start"
stack_php_location "$WWW" php
A=""
expect_line() { grep -qxF -- "$1" "$DIR/body" || fail "$2: no line '$1' in: $(body | head -c 600)"; }
ok() { get "$1" -g; expect_status 200 "$2"; }

scenario() {
  local store=$1
  rm -f "$JAR"
  ok "/typed?n=3&cart=1" "$store: PHP stores an int and an array"
  expect_line 'visits int 3' "$store: PHP's own int"
  ok /typed_count "$store: the sh counter"
  expect_line 'visits=4 type=json' "$store: the sh counter read PHP's int as 3"
  ok /typed_count_py "$store: the Python counter"
  expect_line 'visits=5' "$store: the Python counter read the sh counter's number"
  ok /typed "$store: the PHP counter"
  expect_line 'visits int 6' "$store: PHP read the Python counter's number as an int"
  expect_line 'cart array {"apple":1}' "$store: PHP read its array back"

  ok /typed_cart_py "$store: the Python cart"
  expect_line 'cart={"apple":1}' "$store: the array's JSON text for Python"
  expect_line 'type=json' "$store: the array's type for Python"
  expect_line 'types=cart,visits' "$store: SESSION_TYPES"
  expect_line 'apples=1' "$store: Python decoded the cart"
  # mod_session's format exactly: the JSON text, percent-encoded.
  ok /dump "$store: dump"
  expect_body 'HTTP_SESSION=cart=%7B%22apple%22%3A1%7D&visits=6' "$store: HTTP_SESSION"

  # The operator sees the type beside the value.
  "$SESSIOND" show --db "$DB" "$(cookie)" >"$DIR/show" 2>&1 || fail "$store: sessiond show: $(cat "$DIR/show")"
  grep -qxF 'cart (json) = {"apple":1}' "$DIR/show" || fail "$store: sessiond show: $(cat "$DIR/show")"
  "$SESSIOND" show --json --db "$DB" "$(cookie)" >"$DIR/show" 2>&1 || fail "$store: show --json: $(cat "$DIR/show")"
  grep -qF '{"key": "visits", "value": "6", "type": "json"}' "$DIR/show" ||
    fail "$store: sessiond show --json: $(cat "$DIR/show")"

  # Not JSON: the page failed (502), one log line says why, nothing stored.
  get "/set_json?visits=7&cart=%7B" -g
  expect_status 502 "$store: a JSON directive that is not JSON"
  grep -q 'X-Session-Set-Json header whose value is not JSON' "$DIR/a.log" || fail "$store: no log line for it"
  ok /typed_cart_py "$store: after the refused directive"
  expect_line 'cart={"apple":1}' "$store: the cart is as it was"
  ok "/set_json?cart=%20%5B1%2C%202%5D%20" "$store: a JSON directive with spaces around the value"
  ok /typed_cart_py "$store: the new cart"
  expect_line 'cart=[1, 2]' "$store: the JSON text without the spaces around it"

  # A string set over a JSON item is a string again, for PHP too.
  ok "/set?visits=007" "$store: a string over the counter"
  ok /typed_cart_py "$store: the types after"
  expect_line 'types=cart' "$store: visits is a string now"
  get "/typed?cart=1" -g
  expect_line 'visits int 8' "$store: PHP's '007' + 1"
}

restart --app "php=unix:$DIR/php.sock"
start_nginx a
scenario sqlite
expect_eq "$(sql "SELECT type FROM items WHERE key = 'cart'")" "json" "the type column in SQLite"
expect_eq "$(sql "SELECT value FROM items WHERE key = 'visits'")" "8" "the value without a prefix in SQLite"

# A session too large for one variable: SESSION_FILE's second line is
# SESSION_TYPES's text (the keys of the JSON items), after the items' line.
for k in b1 b2 b3; do
  head -c 60000 /dev/zero | tr '\0' x >"$DIR/value"
  post "/store_body?key=$k" --data-binary "@$DIR/value"
  expect_status 200 "storing 60 kB as $k"
done
get /typed_file
expect_line "SESSION_FILE=/dev/fd/3" "a spilled session"
expect_line "SESSION_TYPES=cart&visits" "a spilled session's SESSION_TYPES"
expect_line "LINES=1" "a spilled session's file: two lines, the last without a newline"
expect_line "FIRST_ENDS=%22%3A1%7D&visits=8" "the file's first line, the items"
expect_line "SECOND=cart&visits" "the file's second line, the types"

pg_start
DB=$("$PG_CLUSTER" uri "$PGDIR")
restart --app "php=unix:$DIR/php.sock"
scenario postgres
