#!/bin/bash
# A session of 1 MiB (--max-session-bytes' default) reaches a libfcgi
# application (tests/e2e/apps/responder.c) whole: sessiond sends what does not
# fit one FastCGI record as SESSION_CHUNK_1..N, which the application joins
# into HTTP_SESSION's text. Its visitor can log out through the application.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
: "${SESSIOND_RESPONDER:?set SESSIOND_RESPONDER to the test responder binary}"
rm -f "$DIR/counter.sock"
"$SESSIOND_RESPONDER" "$DIR/counter.sock" 4 >>"$DIR/counter.log" 2>&1 &
APP=$!
STACK_PIDS="$STACK_PIDS $APP"
stack_wait_for "$APP" test -S "$DIR/counter.sock" || fail "the responder did not start"
cat >"$DIR/nginx-extra-app.conf" <<CONF
location ~ ^/(get|logout)$ {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    fastcgi_param SESSIOND_APP counter;
    fastcgi_pass sessiond;
}
CONF
restart --app "counter=unix:$DIR/counter.sock"
start_nginx a

# 16 values of up to 64 KiB (the value limit) through a page, keys k01..k16,
# the last one 48 bytes short: with the keys, exactly --max-session-bytes.
value() { head -c "$2" /dev/zero | tr '\0' "$1"; }
: >"$DIR/want"
for i in $(seq -w 1 16); do
  n=65536
  [ "$i" = 16 ] && n=$((65536 - 48))
  value "$(printf "\\x$((60 + ${i#0}))")" "$n" >"$DIR/value"
  post "/store_body?key=k$i" --data-binary "@$DIR/value"
  expect_status 200 "storing value $i"
  printf '%sk%s=%s' "$([ "$i" = 01 ] || echo '&')" "$i" "$(cat "$DIR/value")" >>"$DIR/want"
done
expect_eq "$(sql "SELECT sum(length(key) + length(value)) FROM items")" 1048576 "bytes stored"
post "/store_body?key=k17" --data-binary "x"
expect_status 413 "one byte past --max-session-bytes"

get /get
expect_status 200 "the app's read of a 1 MiB session"
cmp -s "$DIR/want" "$DIR/body" ||
  fail "the app's HTTP_SESSION: $(wc -c <"$DIR/body") bytes, '$(head -c 40 "$DIR/body")...', expected $(wc -c <"$DIR/want")"
get /logout
expect_status 303 "logout of a 1 MiB session through the app"
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 0 "sessions after the logout"
exit 0
