# A farm of machines on one computer, for the PostgreSQL end-to-end tests.
# Source it instead of lib.sh (it sources lib.sh). Each machine is a network
# namespace this test creates; the machines meet on two LANs, each a bridge in
# a "switch" namespace of its own, so no address or interface of the farm
# exists in the computer's own namespace:
#
#   front LAN 10.N.1.0/24: lb .1 (nginx, and every client: curl, load loops)
#                          web1 .11, web2 .12 (sessiond on port 9000)
#   back LAN  10.N.2.0/24: web1 .11, web2 .12, db1 .21, db2 .22 (PostgreSQL, 5432)
#
# N is picked per run; namespace names carry the test's pid and a random
# number, so parallel tests and the other build's run never meet. Everything
# (processes, namespaces and so the links) goes on EXIT, also on failure.
#
#   farm_network [db2]      the machines and links (db2: the standby's machine too)
#   on HOST CMD...          runs CMD on a machine (in its namespace)
#   pg_primary HOST         initdb, scram-sha-256 over TCP, roles sessiond and
#                           replicator, database sessions; started
#   pg_standby HOST PRIMARY a streaming standby of PRIMARY (pg_basebackup),
#                           started, and made PRIMARY's synchronous standby
#   pg_start HOST / pg_stop HOST [SIGNAL]   (INT: fast shutdown, the default)
#   pg_kill_machine HOST    every process of the machine killed -9, its link down
#   pg_promote HOST         the standby becomes a primary
#   psql_on HOST SQL        a query as the superuser on HOST's unix socket
#   web_start HOST URI ARGS...  sessiond on HOST:9000 with that --db; the
#                           password from a passfile (PGPASSFILE), never the URI;
#                           its pid in WEB_PID[HOST]
#   lb_start                nginx on lb:80, round robin over web1 and web2;
#                           the X-Served-By response header names the upstream
#   get/post/login/...      lib.sh's, from the lb machine; served_by: web1|web2
#   load_start NAME COUNT SECONDS   a bounded write loop (see there)
#   load_wait STATUS MACHINE...      until each MACHINE answered a load with STATUS
#   load_stop / expect_statuses REGEX / expect_acknowledged_stored HOST
set -u

# ip netns needs root. Not root: sudo without a password, as scripts/install-deps
# does, or a clear failure (never a silent skip).
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=SESSIOND,SESSIOND_SRC,SESSIOND_SANITIZED,TMPDIR,ASAN_OPTIONS,UBSAN_OPTIONS,LSAN_OPTIONS \
      bash "$0" "$@"
  fi
  echo "FAIL ($(basename "$0")): needs root for network namespaces (ip netns); run as root or with password-less sudo" >&2
  exit 1
fi

. "$SESSIOND_SRC/tests/e2e/lib.sh"

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/postgres" ] ||
  fail "no PostgreSQL server in /usr/lib/postgresql/*/bin (scripts/install-deps installs it)"
command -v ip >/dev/null || fail "no ip command (scripts/install-deps installs iproute2)"

NETNS_PREFIX="sdfarm-$$-$RANDOM"
NETNS_NET=$((16 + RANDOM % 200))
NETNS_LIST=""
LB=10.$NETNS_NET.1.1
declare -A FRONT=([web1]=10.$NETNS_NET.1.11 [web2]=10.$NETNS_NET.1.12)
declare -A BACK=([web1]=10.$NETNS_NET.2.11 [web2]=10.$NETNS_NET.2.12
                 [db1]=10.$NETNS_NET.2.21 [db2]=10.$NETNS_NET.2.22)
declare -A WEB_PID=() PG_PID=()
WEB_PORT=9000
PG_PORT=5432
PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
REPL_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# Generous, bounded waits: the sanitized build is several times slower.
WAIT_S=60

farm_cleanup() {
  local ns pid
  trap '' INT TERM HUP
  stack_stop
  for pid in "${PG_PID[@]}"; do kill -QUIT "$pid" 2>/dev/null || :; done
  for pid in "${PG_PID[@]}"; do wait "$pid" 2>/dev/null || :; done
  # Whatever still runs on a machine of this test (a page a killed sessiond
  # left, a PostgreSQL backend) is this test's own: it goes with its machine.
  for ns in $NETNS_LIST; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || :; done
  done
  for ns in $NETNS_LIST; do ip netns del "$ns" 2>/dev/null || :; done
  rm -rf "$DIR" "$PAGES" "$STACK_STATIC"
}
trap farm_cleanup EXIT
trap 'exit 1' INT TERM HUP

ns_of() { echo "$NETNS_PREFIX-$1"; }
# (Not for a background process whose pid is wanted: "on ... &" is a subshell.)
on() { local h=$1; shift; ip netns exec "$(ns_of "$h")" "$@"; }

# wait_until SECONDS CMD...: polls CMD until it succeeds; fails after SECONDS.
wait_until() {
  local limit=$(( $1 * 50 )) i=0; shift
  until "$@"; do
    i=$((i + 1))
    [ "$i" -le "$limit" ] || return 1
    sleep 0.02
  done
}

_netns_add() {
  ip netns add "$(ns_of "$1")" || fail "ip netns add $(ns_of "$1")"
  NETNS_LIST="$NETNS_LIST $(ns_of "$1")"
  ip -n "$(ns_of "$1")" link set lo up
}
# _plug HOST LAN ADDR: a cable from HOST's interface LAN to the LAN's bridge.
_plug() {
  local sw; sw=$(ns_of switch)
  ip -n "$sw" link add "$1-$2" type veth peer name "$2" netns "$(ns_of "$1")" &&
    ip -n "$sw" link set "$1-$2" master "br-$2" up &&
    ip -n "$(ns_of "$1")" addr add "$3/24" dev "$2" &&
    ip -n "$(ns_of "$1")" link set "$2" up || fail "plugging $1 into $2"
}

farm_network() {
  local h
  _netns_add switch
  for lan in front back; do
    ip -n "$(ns_of switch)" link add "br-$lan" type bridge &&
      ip -n "$(ns_of switch)" link set "br-$lan" up || fail "bridge $lan"
  done
  _netns_add lb
  _plug lb front "$LB"
  for h in web1 web2; do
    _netns_add "$h"
    _plug "$h" front "${FRONT[$h]}"
    _plug "$h" back "${BACK[$h]}"
  done
  for h in db1 "$@"; do
    _netns_add "$h"
    _plug "$h" back "${BACK[$h]}"
  done
}

# --- PostgreSQL, as the postgres user, on a db machine ---------------------

as_postgres() { local h=$1; shift; on "$h" setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
psql_on() {
  local h=$1; shift
  as_postgres "$h" "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$DIR/$h.sock" -p "$PG_PORT" \
    -U postgres -d "${PSQL_DB:-sessions}" -c "$@"
}
_pg_ready() { as_postgres "$1" "$PG_BIN/pg_isready" -q -h "$DIR/$1.sock" -p "$PG_PORT" -t 2; }

# pg_start HOST: postgres in the foreground of a background job (its pid is
# the postmaster's, in PG_PID[HOST]), listening on the machine's back address
# only, and on a unix socket in DIR/HOST.sock for the test's own queries.
# fsync off: the tests kill processes, never the computer, and the kernel
# keeps what was written; synchronous_commit and replication are untouched.
pg_start() {
  local h=$1
  mkdir -p "$DIR/$h.sock" && chown postgres: "$DIR/$h.sock" && chmod 700 "$DIR/$h.sock"
  # In a session of its own (setsid, which keeps the pid): on an immediate
  # shutdown the postmaster signals its process group, which would be the test.
  ip netns exec "$(ns_of "$h")" setsid setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$PG_BIN/postgres" -D "$DIR/$h.data" -c listen_addresses="${BACK[$h]}" -c port="$PG_PORT" \
    -c unix_socket_directories="$DIR/$h.sock" -c fsync=off \
    >>"$DIR/$h-postgres.log" 2>&1 &
  PG_PID[$h]=$!
  wait_until "$WAIT_S" _pg_ready "$h" || fail "postgres on $h did not become ready"
  [ "$(head -n 1 "$DIR/$h.data/postmaster.pid")" = "${PG_PID[$h]}" ] || fail "postgres on $h: not the pid started"
}
# pg_stop HOST [SIGNAL]: INT is a fast shutdown, QUIT an immediate one.
pg_stop() {
  kill "-${2:-INT}" "${PG_PID[$1]}" || fail "postgres on $1 was not running"
  wait_exit "${PG_PID[$1]}" >/dev/null
  unset "PG_PID[$1]"
}

pg_primary() {
  local h=$1
  mkdir -p "$DIR/$h.data" && chown postgres: "$DIR/$h.data" && chmod 700 "$DIR/$h.data"
  as_postgres "$h" "$PG_BIN/initdb" -D "$DIR/$h.data" -U postgres -E UTF8 --no-locale \
    --auth-local=peer --auth-host=scram-sha-256 >"$DIR/$h-initdb.out" 2>&1 ||
    fail "initdb on $h: $(cat "$DIR/$h-initdb.out")"
  # Over TCP, only the two roles, each with its password; on the socket, the
  # postgres user itself (peer).
  cat >"$DIR/$h.data/pg_hba.conf" <<EOF
local all postgres peer
host sessions sessiond 10.$NETNS_NET.2.0/24 scram-sha-256
host replication replicator 10.$NETNS_NET.2.0/24 scram-sha-256
EOF
  pg_start "$h"
  PSQL_DB=postgres psql_on "$h" "SET password_encryption = 'scram-sha-256';
    CREATE ROLE sessiond LOGIN PASSWORD '$PG_PASSWORD';
    CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$REPL_PASSWORD';" >/dev/null ||
    fail "roles on $h"
  PSQL_DB=postgres psql_on "$h" "CREATE DATABASE sessions OWNER sessiond" >/dev/null ||
    fail "database on $h"
}

# pg_standby HOST PRIMARY: a base backup of PRIMARY streamed over the back LAN
# as the replicator (its password in a passfile), started as a hot standby,
# then named in PRIMARY's synchronous_standby_names: a commit PRIMARY
# acknowledges is on HOST too.
pg_standby() {
  local h=$1 p=$2
  (umask 077; echo "*:*:*:replicator:$REPL_PASSWORD" >"$DIR/$h.replpass")
  chown postgres: "$DIR/$h.replpass"
  mkdir -p "$DIR/$h.data" && chown postgres: "$DIR/$h.data" && chmod 700 "$DIR/$h.data"
  as_postgres "$h" env PGPASSFILE="$DIR/$h.replpass" "$PG_BIN/pg_basebackup" \
    -h "${BACK[$p]}" -p "$PG_PORT" -U replicator -D "$DIR/$h.data" -X stream -c fast \
    >"$DIR/$h-basebackup.out" 2>&1 || fail "pg_basebackup on $h: $(cat "$DIR/$h-basebackup.out")"
  as_postgres "$h" touch "$DIR/$h.data/standby.signal"
  echo "primary_conninfo = 'host=${BACK[$p]} port=$PG_PORT user=replicator passfile=$DIR/$h.replpass application_name=$h'" \
    >>"$DIR/$h.data/postgresql.auto.conf"
  pg_start "$h"
  PSQL_DB=postgres psql_on "$p" "ALTER SYSTEM SET synchronous_standby_names = '$h'" \
    -c "SELECT pg_reload_conf()" >/dev/null || fail "synchronous_standby_names on $p"
  wait_until "$WAIT_S" _pg_sync "$p" "$h" || fail "$h did not become $p's synchronous standby"
}
_pg_sync() {
  [ "$(PSQL_DB=postgres psql_on "$1" "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$2' AND state = 'streaming'")" = sync ]
}

# pg_kill_machine HOST: the machine dies: every process on it killed -9 and
# its cable pulled, so what was sent to it meets silence, not a reset.
pg_kill_machine() {
  local pid
  ip -n "$(ns_of "$1")" link set back down
  for pid in $(ip netns pids "$(ns_of "$1")"); do kill -KILL "$pid" 2>/dev/null || :; done
  wait "${PG_PID[$1]}" 2>/dev/null
  unset "PG_PID[$1]"
}
pg_promote() {
  PSQL_DB=postgres psql_on "$1" "SELECT pg_promote(true, $WAIT_S)" | grep -qx t || fail "promoting $1"
}

# --- sessiond and nginx on their machines ----------------------------------

# web_start HOST URI ARGS...: sessiond on HOST's front address; the password
# is in HOST's passfile only (PGPASSFILE), libpq's own way. --max-items has
# room for every key a load writes into its one session in its time bound.
web_start() {
  local h=$1 uri=$2; shift 2
  (umask 077; echo "*:*:sessions:sessiond:$PG_PASSWORD" >"$DIR/$h.pgpass")
  # shellcheck disable=SC2086
  ip netns exec "$(ns_of "$h")" env PGPASSFILE="$DIR/$h.pgpass" "$SESSIOND" serve --listen "${FRONT[$h]}:$WEB_PORT" \
    --db "$uri" --pages "$PAGES" --max-items 20000 $AS_ROOT "$@" >>"$DIR/$h.log" 2>&1 &
  WEB_PID[$h]=$!
  STACK_PIDS="$STACK_PIDS ${WEB_PID[$h]}"
  wait_until "$WAIT_S" _web_listening "$h" || fail "sessiond on $h did not start"
}
_web_listening() {
  kill -0 "${WEB_PID[$1]}" 2>/dev/null || fail "sessiond on $1 exited: $(tail -n 2 "$DIR/$1.log")"
  [ -n "$(on "$1" ss -Hltn "sport = :$WEB_PORT")" ]
}
# web_kill HOST SIGNAL: signals sessiond on HOST and reaps it.
web_kill() { { stack_kill "$2" "${WEB_PID[$1]}"; } 2>/dev/null; local s=$?; unset "WEB_PID[$1]"; return "$s"; }

lb_start() {
  cat >"$DIR/nginx.conf" <<EOF
user www-data;
worker_processes 1;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 512; }
http {
    log_format farm '\$upstream_addr \$status \$request_uri';
    access_log $DIR/nginx-access.log farm;
    client_body_temp_path $DIR/nginx-tmp/body;
    fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
    proxy_temp_path $DIR/nginx-tmp/proxy;
    uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
    scgi_temp_path $DIR/nginx-tmp/scgi;
    # Round robin over the two machines. max_fails=0: a machine whose
    # sessiond is gone costs one refused connection, and it is back in the
    # rotation the moment it is back, without a benching period.
    upstream sessiond {
        server ${FRONT[web1]}:$WEB_PORT max_fails=0;
        server ${FRONT[web2]}:$WEB_PORT max_fails=0;
    }
    server {
        listen $LB:80;
        root $PAGES;
        # Which machine answered (the last one nginx tried).
        add_header X-Served-By \$upstream_addr always;
        fastcgi_read_timeout 60s;
        include $SESSIOND_SRC/nginx/sessiond.conf;
    }
}
EOF
  : >"$DIR/nginx-error.log"
  ip netns exec "$(ns_of lb)" nginx -e "$DIR/nginx-error.log" -c "$DIR/nginx.conf" 2>>"$DIR/nginx-error.log" &
  STACK_NGINX_PID=$!
  STACK_PIDS="$STACK_PIDS $STACK_NGINX_PID"
  wait_until "$WAIT_S" _lb_up || fail "nginx did not start: $(cat "$DIR/nginx-error.log")"
}
_lb_up() {
  kill -0 "$STACK_NGINX_PID" 2>/dev/null || fail "nginx exited: $(cat "$DIR/nginx-error.log")"
  [ "$(cat "$DIR/nginx.pid" 2>/dev/null)" = "$STACK_NGINX_PID" ] &&
    on lb curl -s -o /dev/null --max-time 2 "http://$LB/login"
}

# lib.sh's requests, from the lb machine (the farm's addresses exist only there).
BASE() { echo "http://$LB"; }
_curl() {
  _path=$1; shift
  STATUS=$(on lb curl -s -D "$DIR/headers" -o "$DIR/body" -w '%{http_code}' --max-time 30 "$@" \
                "$(BASE)$_path") || fail "curl $_path failed (status ${STATUS:-none})"
}
# host_of ADDR[:PORT][, ...]: the machine of the last address nginx tried.
host_of() {
  local a=${1##*, }; a=${a%:*}
  case $a in "${FRONT[web1]}") echo web1 ;; "${FRONT[web2]}") echo web2 ;; *) echo "?$1" ;; esac
}
served_by() { host_of "$(header X-Served-By)"; }

# --- load ------------------------------------------------------------------

# load_start NAME COUNT SECONDS: in the background, on lb, up to COUNT writes
# one after the other, for at most SECONDS (or until load_stop), each of a
# key and value no other write has (NAME_i=vi.RANDOM), in the session of
# the jar $DIR/NAME.jar (made here, with a first write that must succeed).
# Every load's answers are lines of $DIR/load, "KEY=VALUE STATUS ADDRESS TIME"
# (the answering machine's front address, the time it came; one write(2)
# each, so lines of several loads never mix).
declare -A LOAD_PID=()
load_start() {
  local name=$1 count=$2 secs=$3
  rm -f "$DIR/load.stop" "$DIR/$name.jar"
  JAR="$DIR/$name.jar" get "/set?${name}_0=start"
  expect_status 200 "first write of load $name"
  ip netns exec "$(ns_of lb)" bash -c '
    name=$1 count=$2 secs=$3 base=$4 dir=$5
    end=$((SECONDS + secs)) i=0
    while [ "$i" -lt "$count" ] && [ "$SECONDS" -lt "$end" ] && [ ! -e "$dir/load.stop" ]; do
      i=$((i + 1))
      kv="${name}_$i=v$i.$RANDOM"
      out=$(curl -s -o /dev/null -b "$dir/$name.jar" --max-time 30 \
                 -w "%{http_code} %header{x-served-by}" "$base/set?$kv")
      by=${out#* }; by=${by##*, }
      echo "$kv ${out%% *} ${by%:*} $EPOCHREALTIME"
    done' _ "$name" "$count" "$secs" "$(BASE)" "$DIR" >>"$DIR/load" 2>>"$DIR/load-errors.log" &
  LOAD_PID[$name]=$!
  STACK_PIDS="$STACK_PIDS ${LOAD_PID[$name]}"
}
# load_stop: ends every load (each within its curl's bound).
load_stop() {
  local n
  touch "$DIR/load.stop"
  for n in "${!LOAD_PID[@]}"; do wait_exit "${LOAD_PID[$n]}" >/dev/null || :; done
  LOAD_PID=()
}
# get_as NAME PATH: a request in load NAME's session, its jar left as it is
# (the load reads it meanwhile).
get_as() { _curl "$2" -b "$DIR/$1.jar"; }
load_lines() { wc -l <"$DIR/load"; }
# load_seen FROM STATUS [MACHINE]: some answer after the first FROM ones had
# STATUS (a regex), from MACHINE if given.
load_seen() {
  local addr=""
  [ -n "${3:-}" ] && addr=${FRONT[$3]}
  tail -n "+$(( $1 + 1 ))" "$DIR/load" | awk -v s="^($2)\$" -v a="$addr" \
    'NF >= 3 && $2 ~ s && (a == "" || $3 == a) { found = 1 } END { exit !found }'
}
# load_wait STATUS [MACHINE]...: waits (bounded) until, from now on, each
# MACHINE (or any) has given an answer with STATUS to some load; the loads
# must still run meanwhile.
load_wait() {
  local from status=$1 m; shift
  from=$(load_lines)
  for m in "${@:-}"; do
    wait_until "$WAIT_S" _load_seen_running "$from" "$status" "$m" ||
      fail "no $status answer${m:+ from $m} within $WAIT_S s; last: $(tail -n 4 "$DIR/load" | tr '\n' '|')"
  done
}
_load_seen_running() {
  local n
  load_seen "$@" && return 0
  for n in "${!LOAD_PID[@]}"; do kill -0 "${LOAD_PID[$n]}" 2>/dev/null && return 1; done
  fail "the loads ended early; last: $(tail -n 4 "$DIR/load" | tr '\n' '|')"
}
# load_summary: "N writes: STATUS xCOUNT, ..." (for a look at a run).
load_summary() {
  echo "$(load_lines) writes: $(awk '{ print $2 }' "$DIR/load" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')"
}
# expect_statuses REGEX: every answer had a status matching REGEX (000 is
# curl's: no answer within its bound, a hang).
expect_statuses() {
  local bad
  bad=$(awk -v s="^($1)\$" '$2 !~ s' "$DIR/load" | head -n 5)
  [ -z "$bad" ] || fail "unexpected answers to the loads: $(echo "$bad" | tr '\n' '|')"
}

# expect_acknowledged_stored HOST: every write of the loads that got a 2xx is
# in the database on HOST, key and value, read with psql.
expect_acknowledged_stored() {
  local h=$1
  awk '$2 ~ /^2/ { print $1 }' "$DIR/load" | sort >"$DIR/acknowledged"
  psql_on "$h" "SELECT $(_pg_text "$h" key) || '=' || $(_pg_text "$h" value) FROM items" | sort >"$DIR/stored" ||
    fail "reading items on $h"
  comm -23 "$DIR/acknowledged" "$DIR/stored" >"$DIR/lost"
  [ ! -s "$DIR/lost" ] || fail "$(wc -l <"$DIR/lost") acknowledged writes are not on $h: $(head -n 5 "$DIR/lost" | tr '\n' ' ')"
  [ -s "$DIR/acknowledged" ] || fail "no write was acknowledged"
}
# _pg_text HOST COLUMN: the items table's COLUMN (key, value) as text in SQL,
# whichever type the schema gives it.
_pg_text() {
  case $(psql_on "$1" "SELECT data_type FROM information_schema.columns WHERE table_name = 'items' AND column_name = '$2'") in
    bytea) echo "convert_from($2, 'UTF8')" ;;
    *) echo "$2" ;;
  esac
}

# expect_no_password: no log of the farm holds a password.
expect_no_password() {
  ! grep -rlF -e "$PG_PASSWORD" -e "$REPL_PASSWORD" "$DIR"/*.log >/dev/null 2>&1 ||
    fail "a password is in $(grep -rlF -e "$PG_PASSWORD" -e "$REPL_PASSWORD" "$DIR"/*.log | tr '\n' ' ')"
}
