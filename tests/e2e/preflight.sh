#!/bin/bash
# sessiond serve --test, as `nginx -t`: it checks what serve checks at start
# (the settings, the database, the pages, the log file, the listen address)
# without serving, binding or creating anything; prints the effective
# settings as a config file that reads back the same; exits 0, or 2 with
# every problem listed. It works beside a running sessiond.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# run_test ARGS...: sessiond serve --test ARGS; STATUS, $DIR/out, $DIR/err.
run_test() {
  timeout 30 "$SESSIOND" serve --test $AS_ROOT "$@" >"$DIR/out" 2>"$DIR/err"
  STATUS=$?
}
said() { grep -qF -- "$1" "$DIR/err" || fail "$2: stderr lacks '$1': $(cat "$DIR/err")"; }
printed() { grep -qxF -- "$1" "$DIR/out" || fail "$2: stdout lacks the line '$1': $(cat "$DIR/out")"; }

# --- A good config file: 0, the settings, nothing created.
cat >"$DIR/good.ini" <<INI
[serve]
listen = "unix:$DIR/t.sock"
db = "$DB"
pages = "$PAGES"
idle-timeout = "30m"
page-timeout = "1500ms"
max-body-bytes = "2MiB"
cookie-secure = true
status-path = "/sessiond-status"
INI
run_test --config "$DIR/good.ini"
expect_eq "$STATUS" 0 "serve --test of a good config: exit status ($(cat "$DIR/err"))"
printed "[serve]" "a good config"
printed "listen = \"unix:$DIR/t.sock\"" "a good config"
printed "db = \"$DB\"" "a good config"
printed 'idle-timeout = "30m"' "a good config"
printed 'page-timeout = "1500ms"' "a good config"
printed 'max-body-bytes = "2MiB"' "a good config"
printed 'cookie-secure = true' "a good config"
printed 'status-path = "/sessiond-status"' "a good config"
printed 'workers = 16' "a good config (a default)"
printed 'absolute-timeout = "24h"' "a good config (a default)"
printed '# log-file is not set' "a good config (an unset option)"
# Every option of serve --help is printed (but --help and --test).
for opt in $("$SESSIOND" serve --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
  case "$opt" in --help|--test|--config) continue ;; esac
  grep -qE "^(# )?${opt#--}( = | is not set$)" "$DIR/out" || fail "serve --test does not print $opt: $(cat "$DIR/out")"
done
said "the settings are good" "a good config"
said "does not exist yet: serve creates it" "a good config with no database yet"
[ ! -e "$DB" ] || fail "serve --test created the database"
[ ! -e "$DIR/t.sock" ] || fail "serve --test created the socket"
# What it prints is a config file that gives the same settings.
cp "$DIR/out" "$DIR/printed.ini"
run_test --config "$DIR/printed.ini"
expect_eq "$STATUS" 0 "serve --test of its own output: exit status ($(cat "$DIR/err"))"
cmp -s "$DIR/out" "$DIR/printed.ini" || fail "its output read back differs: $(diff "$DIR/printed.ini" "$DIR/out")"

# --- Beside a running sessiond on the same socket and database: 0, and that
# sessiond serves on, untouched.
start_sessiond a
start_nginx a
login ann
run_test --listen "unix:$DIR/a.sock" --db "$DB" --pages "$PAGES"
expect_eq "$STATUS" 0 "serve --test beside a running sessiond: exit status ($(cat "$DIR/err"))"
get /home
expect_body "ann" "the running sessiond after serve --test"
# A TCP port in use is no problem either: nothing is bound.
PORT_IN_USE=$STACK_PORT
run_test --listen "127.0.0.1:$PORT_IN_USE" --db "$DB" --pages "$PAGES"
expect_eq "$STATUS" 0 "serve --test on a port in use: exit status ($(cat "$DIR/err"))"

# --- Problems: 2, each named, the settings still printed.
run_test --listen "unix:$DIR/t.sock" --db "$DB" --pages "$PAGES" --cookie-samesite None
expect_eq "$STATUS" 2 "serve --test with SameSite=None without Secure"
said "--cookie-samesite None needs --cookie-secure" "SameSite=None without Secure"
said "serve --test: 1 problem" "SameSite=None without Secure"
printed 'cookie-samesite = "None"' "SameSite=None without Secure"

echo "not a database, just text" >"$DIR/text.db"
printf 'x' >"$DIR/regular-file"
run_test --listen "unix:$DIR/regular-file" --db "$DIR/text.db" --pages "$PAGES" \
         --log-file "$DIR/no-such-dir/sessiond.log" --status-path status
expect_eq "$STATUS" 2 "serve --test with four problems"
said "--listen unix:$DIR/regular-file: $DIR/regular-file exists and is not a socket" "a listen path that is a file"
said "--db $DIR/text.db: " "a database that is not one"
said "not a database" "a database that is not one"
said "--log-file $DIR/no-such-dir/sessiond.log cannot be created" "a log file in a missing directory"
said "--status-path 'status' must be a URI path" "a status path without a slash"
said "serve --test: 4 problems" "four problems"
expect_eq "$(cat "$DIR/regular-file")" x "the file at the listen path"

cp "$DB" "$DIR/newer.db"
sqlite3 "$DIR/newer.db" "PRAGMA user_version = 99"
run_test --listen "unix:$DIR/t.sock" --db "$DIR/newer.db" --pages "$PAGES"
expect_eq "$STATUS" 0 "serve --test with a database a newer sessiond expanded"
said "schema version 99, expanded by a newer sessiond of the farm: this one serves it as it is" \
  "a database a newer sessiond expanded"
sqlite3 "$DIR/newer.db" "UPDATE sessiond_schema SET required = 99"
run_test --listen "unix:$DIR/t.sock" --db "$DIR/newer.db" --pages "$PAGES"
expect_eq "$STATUS" 2 "serve --test with a database finished for a newer sessiond"
said "needs a sessiond of schema version 99 or later" "a database finished for a newer sessiond"

run_test --listen "nonsense" --db "$DB" --pages "$PAGES"
expect_eq "$STATUS" 2 "serve --test with a malformed --listen"
said "--listen nonsense: not unix:PATH or HOST:PORT" "a malformed --listen"

# What serve refuses at parsing is refused the same way.
run_test --listen "unix:$DIR/t.sock" --db "$DB" --pages "$DIR/no-such-pages"
expect_eq "$STATUS" 2 "serve --test with a missing pages directory"
said "no-such-pages" "a missing pages directory"
exit 0
