#!/bin/bash
# Failover of a farm on PostgreSQL (tests/e2e/netns_lib.sh) to a streaming
# standby, under a write load through both machines. sessiond's --db names
# both database machines and asks for the writable one:
#   postgresql://sessiond@PRIMARY,STANDBY/sessions?target_session_attrs=read-write
# The standby is synchronous, so every commit the primary acknowledged is on
# it. The primary's machine dies (every process killed -9, its cable pulled):
# 503s from both machines while no database takes writes; the standby is
# promoted: 200s again from the same sessiond processes; every write
# acknowledged with a 2xx is on the promoted standby.
. "$SESSIOND_SRC/tests/e2e/netns_lib.sh"
farm_network db2
pg_primary db1
pg_standby db2 db1
URI="postgresql://sessiond@${BACK[db1]}:$PG_PORT,${BACK[db2]}:$PG_PORT/sessions?target_session_attrs=read-write"
# The workers of a machine share its connections (--db-connections): when
# one finds the primary gone, the idle ones are closed with it, and new ones
# pay the dead primary's connect timeout (the busy timeout) before they find
# the standby. The stock 16 workers.
web_start web1 "$URI" --busy-timeout 2s
web_start web2 "$URI" --busy-timeout 2s
PIDS="${WEB_PID[web1]} ${WEB_PID[web2]}"
lb_start

load_start w1 20000 100
load_start w2 20000 100
load_wait 200 web1 web2

pg_kill_machine db1
load_wait 503 web1 web2
pg_promote db2
PROMOTED=$EPOCHREALTIME
load_wait 200 web1 web2
get_as w1 /dump
expect_status 200 "a read after the failover"
expect_body "^SESSION_VAR_w1_1=" "a read after the failover"

load_stop
# Reported, not asserted: from the promotion to the first 200, and to the
# last 503 (when every connection of both machines had found the new primary).
awk -v t="$PROMOTED" '$4 > t && $2 == 200 && (!f || $4 < f) { f = $4 } $4 > t && $2 == 503 { l = $4 }
  END { printf "failover: first 200 %.2f s after the promotion, last 503 %.2f s after it\n", f - t, l ? l - t : 0 }' \
  "$DIR/load"
expect_statuses '200|503'
expect_acknowledged_stored db2
expect_eq "${WEB_PID[web1]} ${WEB_PID[web2]}" "$PIDS" "sessiond's pids"
for pid in $PIDS; do kill -0 "$pid" 2>/dev/null || fail "sessiond $pid is gone"; done
expect_no_password
