# Starts and stops a real nginx and real sessiond processes, for the demo
# (scripts/demo) and the end-to-end tests (tests/e2e). Source it, then:
#   stack_init DIR                 state dir: sockets, logs, nginx config, db
#   stack_sessiond NAME ARGS...    sessiond on DIR/NAME.sock, log DIR/NAME.log;
#                                  its pid is left in STACK_PID
#   stack_nginx PAGES NAME...      nginx on 127.0.0.1:$STACK_PORT (random when
#                                  unset) in front of those sessionds, serving
#                                  /static/ and /favicon.ico itself from
#                                  $STACK_STATIC (default sample_static/); sets
#                                  STACK_PORT and STACK_NGINX_PID
#   stack_apache PAGES LISTEN      Apache httpd instead, on 127.0.0.1:$STACK_PORT
#                                  (random when unset), in front of the sessiond
#                                  at LISTEN (as sessiond's --listen: unix:PATH or
#                                  HOST:PORT); sets STACK_PORT and STACK_APACHE_PID
#   stack_php_fpm NAME [LINE...]   php-fpm with a config and a pool of its own on
#                                  DIR/NAME.sock, log DIR/NAME.log, sessiond's
#                                  PHP bridge on its include_path and as its
#                                  auto_prepend_file ($STACK_PHP_INCLUDE,
#                                  default php/); each LINE
#                                  is one more pool line; its pid in STACK_PID
#   stack_php_location ROOT APP    the nginx location (for stack_nginx, so call
#                                  it first) that runs /NAME as ROOT/NAME.php in
#                                  sessiond's application APP
#   stack_kill SIGNAL PID          signals one of them and reaps it; returns
#                                  its exit status
#   stack_forget PID               drops PID from what stack_stop stops (it
#                                  was reaped: its pid may be reused)
#   stack_stop                     stops everything started (also on EXIT)
# Needs SESSIOND (the binary) and SESSIOND_SRC (the source tree).
# Every process is stopped by its pid; every wait is bounded.

STACK_PIDS=""

# stack_random_port: a loopback port for a test's server, below the kernel's
# range of ephemeral ports (ip_local_port_range), so that no outgoing
# connection of another test running at the same time can hold it; and none
# that a socket, listening or not, holds now.
stack_random_port() {
  _low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$_low" -gt 21000 ] || _low=32768
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    _p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % (_low - 20000)))
    ss -Htan "sport = :$_p" | grep -q . || { echo "$_p"; return 0; }
  done
  return 1
}

stack_init() {
  STACK_DIR=$1
  mkdir -p "$STACK_DIR/nginx-tmp"
  # Locations an earlier run added (the demo's var/ is reused): a fresh stack has none.
  rm -f "$STACK_DIR"/nginx-extra*.conf
  # nginx's workers drop to www-data when started as root: let them reach the sockets.
  chmod 755 "$STACK_DIR"
  trap stack_stop EXIT
}

# Waits until "$@" succeeds, up to about 10 s, while process $1 lives.
stack_wait_for() {
  _pid=$1; shift
  _i=0
  until "$@"; do
    kill -0 "$_pid" 2>/dev/null || return 1
    _i=$((_i + 1))
    [ "$_i" -le 500 ] || return 1
    sleep 0.02
  done
}

# _stack_new_socket PATH INODE: PATH is a socket, and not the one of INODE.
_stack_new_socket() { [ -S "$1" ] && [ "$(stat -c %i "$1" 2>/dev/null)" != "$2" ]; }

stack_sessiond() {
  _name=$1; shift
  _sock="$STACK_DIR/$_name.sock"
  # Never removed here: sessiond replaces a stale socket (left by one killed
  # -9) itself, and refuses one a running sessiond listens on (a second
  # `make run`), which stays served. Wait for a socket other than the one there.
  _old=$(stat -c %i "$_sock" 2>/dev/null || echo none)
  # As root, sessiond wants to know who pages run as: the tests' pages write
  # into their own directory, so they run as root here. STACK_USER overrides
  # it ("--user nobody"; empty: nothing, for a sessiond without these flags).
  _as=""
  [ "$(id -u)" -eq 0 ] && _as=${STACK_USER---allow-root}
  # shellcheck disable=SC2086
  "$SESSIOND" serve --listen "unix:$_sock" --socket-mode 0666 $_as "$@" >>"$STACK_DIR/$_name.log" 2>&1 &
  STACK_PID=$!
  STACK_PIDS="$STACK_PIDS $STACK_PID"
  # The socket appears only once sessiond accepts connections.
  if ! stack_wait_for "$STACK_PID" _stack_new_socket "$_sock" "$_old"; then
    echo "sessiond $_name did not start:" >&2
    cat "$STACK_DIR/$_name.log" >&2
    return 1
  fi
}

stack_php_fpm() {
  _name=$1; shift
  _sock="$STACK_DIR/$_name.sock"
  rm -f "$_sock"  # left behind by a php-fpm that was killed -9
  _fpm=${STACK_PHP_FPM:-$(command -v php-fpm8.2 php-fpm | head -n 1)}
  [ -n "$_fpm" ] || { echo "no php-fpm (Debian package php-fpm)" >&2; return 1; }
  # As root, the workers run as www-data, as Debian's own pool does
  # (STACK_PHP_USER=root keeps them root, for a tree www-data cannot read).
  _runas=""; _allow=""
  if [ "$(id -u)" -eq 0 ]; then
    if [ "${STACK_PHP_USER:-www-data}" = root ]; then _allow=-R
    else _runas="user = ${STACK_PHP_USER:-www-data}"; fi
  fi
  # Errors go to the log, never to the visitor, as in production; so does
  # the workers' stderr. The caller's lines come last and win.
  {
    printf '[global]\npid = %s\nerror_log = %s\ndaemonize = no\n' "$STACK_DIR/$_name.pid" "$STACK_DIR/$_name.log"
    printf '[%s]\n%s\nlisten = %s\nlisten.mode = 0666\n' "$_name" "$_runas" "$_sock"
    printf 'pm = static\npm.max_children = 4\ncatch_workers_output = yes\ndecorate_workers_output = no\n'
    printf 'php_admin_flag[display_errors] = off\nphp_admin_flag[log_errors] = on\n'
    printf 'php_value[include_path] = ".:%s"\n' "${STACK_PHP_INCLUDE:-$SESSIOND_SRC/php}"
    # The one line a PHP application needs behind sessiond (docs/php.md).
    printf 'php_admin_value[auto_prepend_file] = %s/sessiond.php\n' "${STACK_PHP_INCLUDE:-$SESSIOND_SRC/php}"
    for _l in "$@"; do printf '%s\n' "$_l"; done
  } >"$STACK_DIR/$_name-fpm.conf"
  # In the foreground: this pid is the master, which stops its workers on TERM.
  # shellcheck disable=SC2086
  "$_fpm" $_allow -F -y "$STACK_DIR/$_name-fpm.conf" >>"$STACK_DIR/$_name.log" 2>&1 &
  STACK_PID=$!
  STACK_PIDS="$STACK_PIDS $STACK_PID"
  if ! stack_wait_for "$STACK_PID" test -S "$_sock"; then
    echo "php-fpm $_name did not start:" >&2
    cat "$STACK_DIR/$_name.log" >&2
    return 1
  fi
}

stack_php_location() {
  # /NAME runs ROOT/NAME.php in php-fpm, through sessiond: nginx names the
  # script and the application, sessiond adds the session. A NAME without a
  # .php file goes to sessiond's pages as before. A regular expression
  # location wins over the snippet's `location /`.
  cat >"$STACK_DIR/nginx-extra-php.conf" <<EOF
location ~ ^/[A-Za-z0-9_-]+\$ {
    root $1;
    try_files \$uri.php @sessiond_pages;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    fastcgi_param SESSIOND_APP $2;
    fastcgi_pass sessiond;
}
location @sessiond_pages {
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    fastcgi_pass sessiond;
}
EOF
}

# Sets _static to the static directory for pages directory $1, or fails:
# the web server hands out any file of it as is, so refuse one that holds the
# pages or lies among them, and no page's source is ever served.
_stack_static() {
  _static=${STACK_STATIC:-$SESSIOND_SRC/sample_static}
  [ -d "$_static" ] || { echo "no static directory $_static" >&2; return 1; }
  _static=$(realpath "$_static")
  _real_pages=$(realpath "$1")
  case "$_static/" in "$_real_pages/"*)
    echo "static directory $_static is inside the pages directory $_real_pages" >&2; return 1;; esac
  case "$_real_pages/" in "$_static/"*)
    echo "pages directory $_real_pages is inside the static directory $_static" >&2; return 1;; esac
  return 0
}

stack_nginx() {
  _pages=$1; shift
  _stack_static "$_pages" || return 1
  _servers=""
  # max_fails=0: a refused local socket costs nothing to retry, so nginx never
  # benches a sessiond that was restarted a moment ago.
  for _n in "$@"; do _servers="$_servers        server unix:$STACK_DIR/$_n.sock max_fails=0;
"; done
  _user=""
  [ "$(id -u)" -eq 0 ] && _user="user www-data;"
  _fixed=${STACK_PORT:-}
  _try=0
  while :; do
    _try=$((_try + 1))
    STACK_PORT=${_fixed:-$(stack_random_port)}
    awk -v user="$_user" -v var="$STACK_DIR" -v port="$STACK_PORT" -v pages="$_pages" \
        -v static="$_static" -v snippet="$SESSIOND_SRC/nginx/sessiond.conf" -v servers="$_servers" '
      { gsub("@USER@", user); gsub("@VAR@", var); gsub("@PORT@", port);
        gsub("@PAGES@", pages); gsub("@STATIC@", static); gsub("@SNIPPET@", snippet);
        if ($0 == "@SERVERS@") { printf "%s", servers; next } print }' \
      "$SESSIOND_SRC/nginx/nginx.conf.in" >"$STACK_DIR/nginx.conf"
    : >"$STACK_DIR/nginx-error.log"
    # nginx writes its pid file only once it holds its listening sockets: the
    # proof that the port answering below is this nginx, not another server
    # that had it already.
    rm -f "$STACK_DIR/nginx.pid"
    nginx -e "$STACK_DIR/nginx-error.log" -c "$STACK_DIR/nginx.conf" 2>>"$STACK_DIR/nginx-error.log" &
    STACK_NGINX_PID=$!
    STACK_PIDS="$STACK_PIDS $STACK_NGINX_PID"
    if stack_wait_for "$STACK_NGINX_PID" _stack_nginx_up; then
      return 0
    fi
    wait "$STACK_NGINX_PID" 2>/dev/null
    stack_forget "$STACK_NGINX_PID"
    # Another program had the port: try another one, unless it was asked for.
    if [ -z "$_fixed" ] && [ "$_try" -lt 10 ] && grep -q "in use" "$STACK_DIR/nginx-error.log"; then
      continue
    fi
    echo "nginx did not start:" >&2
    cat "$STACK_DIR/nginx-error.log" >&2
    return 1
  done
}

stack_apache() {
  _pages=$1
  _stack_static "$_pages" || return 1
  case $2 in
    unix:*) _backend="$2|fcgi://localhost/" ;;  # sessiond's unix:PATH, as mod_proxy writes it
    *) _backend="fcgi://$2/" ;;
  esac
  _user=""
  [ "$(id -u)" -eq 0 ] && _user='User www-data\nGroup www-data'  # awk -v reads \n
  _fixed=${STACK_PORT:-}
  _try=0
  while :; do
    _try=$((_try + 1))
    STACK_PORT=${_fixed:-$(stack_random_port)}
    awk -v user="$_user" -v var="$STACK_DIR" -v port="$STACK_PORT" -v pages="$_pages" \
        -v static="$_static" -v snippet="$SESSIOND_SRC/apache/sessiond.conf" -v backend="$_backend" '
      { gsub("@VAR@", var); gsub("@PORT@", port); gsub("@PAGES@", pages); gsub("@STATIC@", static);
        gsub("@SNIPPET@", snippet); gsub("@BACKEND@", backend);
        if ($0 == "@USER@") { print user; next } print }' \
      "$SESSIOND_SRC/apache/apache.conf.in" >"$STACK_DIR/apache.conf"
    : >"$STACK_DIR/apache-error.log"
    # In the foreground: this pid is Apache's parent process, stopped by SIGTERM.
    apache2 -f "$STACK_DIR/apache.conf" -DFOREGROUND 2>>"$STACK_DIR/apache-error.log" &
    STACK_APACHE_PID=$!
    STACK_PIDS="$STACK_PIDS $STACK_APACHE_PID"
    if stack_wait_for "$STACK_APACHE_PID" \
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$STACK_PORT/favicon.ico"; then
      return 0
    fi
    wait "$STACK_APACHE_PID" 2>/dev/null
    if [ -z "$_fixed" ] && [ "$_try" -lt 10 ] && grep -q "in use" "$STACK_DIR/apache-error.log"; then
      continue
    fi
    echo "apache did not start:" >&2
    cat "$STACK_DIR/apache-error.log" >&2
    return 1
  done
}

# A file the web server serves itself: / is a page (index), which would reach
# sessiond (and start one that waits for socket activation).
_stack_nginx_up() {
  [ "$(cat "$STACK_DIR/nginx.pid" 2>/dev/null)" = "$STACK_NGINX_PID" ] &&
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$STACK_PORT/favicon.ico"
}

stack_kill() {
  kill "-$1" "$2"
  wait "$2"
  _status=$?
  stack_forget "$2"
  return "$_status"
}

# Forget a pid that was reaped, so stack_stop never signals a pid the system
# has reused.
stack_forget() {
  STACK_PIDS=$(echo "$STACK_PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

# Each kill and wait may fail (a process that died already) and must not end
# a `set -e` caller half-way: every process gets its signal.
stack_stop() {
  for _p in $STACK_PIDS; do kill -TERM "$_p" 2>/dev/null || :; done
  for _p in $STACK_PIDS; do wait "$_p" 2>/dev/null || :; done
  STACK_PIDS=""
}
