#!/bin/bash
# The database out of reach of a farm on PostgreSQL (tests/e2e/netns_lib.sh),
# under a write load through both machines: web2's cable to the database
# pulled and plugged back, then PostgreSQL restarted. While the database is
# out of a machine's reach, that machine answers 503 (web1 goes on with 200s
# while only web2 is cut off); no write is acknowledged that is not in the
# database afterwards; and each machine's sessiond, never restarted (the
# same pid), answers 200s again once the database is back.
. "$SESSIOND_SRC/tests/e2e/netns_lib.sh"
farm_network
pg_primary db1
URI="postgresql://sessiond@${BACK[db1]}:$PG_PORT/sessions"
web_start web1 "$URI" --busy-timeout 2s
web_start web2 "$URI" --busy-timeout 2s
PIDS="${WEB_PID[web1]} ${WEB_PID[web2]}"
lb_start

load_start w1 20000 100
load_start w2 20000 100
load_wait 200 web1 web2

# web2 cut off from the database: its requests get 503, web1's 200.
ip -n "$(ns_of web2)" link set back down
load_wait 503 web2
load_wait 200 web1
# A request that only reads the session is refused too.
for _ in 1 2; do
  get_as w1 /dump
  case $(served_by) in
    web1) expect_status 200 "a read through web1 while web2 is cut off" ;;
    web2) expect_status 503 "a read through web2 while it is cut off" ;;
    *) fail "read while web2 is cut off: answered by '$(served_by)'" ;;
  esac
done
ip -n "$(ns_of web2)" link set back up
load_wait 200 web2

# PostgreSQL restarted (a fast shutdown, then started again): 503s from
# both machines while it is down, 200s from both once it is up.
pg_stop db1 INT
load_wait 503 web1 web2
get_as w1 /dump
expect_status 503 "a read while the database is down"
pg_start db1
load_wait 200 web1 web2
get_as w1 /dump
expect_status 200 "a read once the database is back"

load_stop
expect_statuses '200|503'
expect_acknowledged_stored db1
expect_eq "${WEB_PID[web1]} ${WEB_PID[web2]}" "$PIDS" "sessiond's pids"
for pid in $PIDS; do kill -0 "$pid" 2>/dev/null || fail "sessiond $pid is gone"; done
for h in web1 web2; do
  expect_eq "$(grep -c "starting sessiond" "$DIR/$h.log")" 1 "sessiond starts on $h"
done
expect_no_password
