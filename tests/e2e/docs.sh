#!/bin/bash
# Every command the docs mark as runnable runs as written, so a pasted step
# never fails. A fenced block right after one of these comments is run:
#
#   <!-- test: run -->        a shell block, run as root on a private copy of
#                             the machine (below), after the doc's earlier blocks
#   <!-- test: systemd -->    the same, where systemctl loads the units it is
#                             given (systemd-analyze verify: no systemd runs here)
#   <!-- test: setup          (a comment of its own, ended by a line "-->"):
#                             shell lines the reader need not see, run as
#                             a `run` block (a server for the examples to query)
#   <!-- test: page NAME -->  a page (sh, python, perl, or C compiled with cc)
#                             installed as NAME in a real sessiond behind nginx
#                             (the page helpers it names from lib.sh's copy),
#                             asked twice by one visitor: 200 both times, and
#                             the second answer shows the session's change
#
# Every relative link of the docs must reach a file, and a heading in it.
#
# The private copy: each doc's blocks run in order in one shell, in a mount,
# network and pid namespace of their own (unshare), where /etc, /usr, /var,
# /srv, /root and /opt are overlays whose changes live in a tmpfs, /run is
# an empty tmpfs and the loopback is private: users, directories, packages'
# configs, nginx on port 80, a PostgreSQL cluster, all as on a fresh Debian
# machine, and nothing of it outlives the test. `make install` there is the
# Makefile's `cmake --install` of the build under test. Every process a doc
# started is stopped by pid before its namespace ends (which kills anything
# left).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
BUILD_DIR=$(cd "$(dirname "$SESSIOND")" && pwd)
[ -f "$BUILD_DIR/CMakeCache.txt" ] || fail "$SESSIOND is not in a CMake build tree"
[ "$(id -u)" -eq 0 ] || fail "the docs' recipes run as root: run this test as root"
command -v unshare >/dev/null || fail "unshare (util-linux) is missing"

# --- The blocks, out of every doc.
DOCS=(README.md $(cd "$SESSIOND_SRC" && ls docs/*.md))
mkdir -p "$DIR/blocks"
( cd "$SESSIOND_SRC" && python3 - "$DIR/blocks" "${DOCS[@]}" ) <<'EOF' || fail "could not extract the docs' blocks"
import os, re, sys
out, docs = sys.argv[1], sys.argv[2:]
marker = re.compile(r'^<!-- test: (run|systemd|page) ?(\S*) -->$')
for doc in docs:
    lines = open(doc).read().split('\n')
    n = 0
    for i, line in enumerate(lines):
        if line == '<!-- test: setup':
            # Setup the reader does not need to see: the comment's lines.
            end = lines.index('-->', i + 1)
            n += 1
            with open(os.path.join(out, '%s.%03d.run' % (doc.replace('/', '_'), n)), 'w') as f:
                f.write('# %s:%d (setup)\n' % (doc, i + 2) + '\n'.join(lines[i + 1:end]) + '\n')
            continue
        m = marker.match(line)
        if not m:
            continue
        fence = lines[i + 1] if i + 1 < len(lines) else ''
        if not fence.startswith('```'):
            sys.exit('%s:%d: a test marker not followed by a fenced block' % (doc, i + 1))
        end = lines.index('```', i + 2)
        n += 1
        name = '%s.%03d.%s' % (doc.replace('/', '_'), n, m.group(1))
        with open(os.path.join(out, name), 'w') as f:
            f.write('# %s:%d\n' % (doc, i + 3) if m.group(1) != 'page' else '')
            f.write('\n'.join(lines[i + 2:end]) + '\n')
        with open(os.path.join(out, name + '.meta'), 'w') as f:
            f.write('%s %s %s\n' % (doc, m.group(2) or '-', fence[3:] or 'sh'))
EOF
ls "$DIR/blocks" | grep -q . || fail "the docs mark no block as runnable"

# --- Every relative link of the docs reaches a file, and a heading of it.
links=$(cd "$SESSIOND_SRC" && python3 - "${DOCS[@]}" bench/results/HISTORY.md <<'EOF'
import os, re, sys
def slug(h):
    h = re.sub(r'`', '', h.strip().lower())
    h = re.sub(r'[^\w\- ]', '', h)
    return h.replace(' ', '-')
def anchors(path):
    return {slug(m.group(1)) for m in re.finditer(r'^#+ (.*)$', open(path).read(), re.M)}
bad = 0
for doc in sys.argv[1:]:
    text = open(doc).read()
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    for m in re.finditer(r'\]\(([^)\s]+)\)', text):
        link = m.group(1)
        if re.match(r'[a-z]+:', link):
            continue
        path, _, frag = link.partition('#')
        target = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        if not os.path.exists(target):
            print('%s: link to a missing file: %s' % (doc, link)); bad += 1; continue
        if frag and target.endswith('.md') and frag not in anchors(target):
            print('%s: link to a missing heading: %s' % (doc, link)); bad += 1
sys.exit(1 if bad else 0)
EOF
) || fail "broken links in the docs:
$links"

# --- Pages: one sessiond behind nginx serves every page a doc shows.
pages=()
for meta in "$DIR"/blocks/*.page.meta; do
  [ -e "$meta" ] || continue
  read -r doc name lang <"$meta"
  block=${meta%.meta}
  case "$lang" in
    c) cc -O2 -o "$PAGES/$name" -x c "$block" 2>"$DIR/cc.log" || fail "$doc: page $name does not compile: $(cat "$DIR/cc.log")" ;;
    *) cp "$block" "$PAGES/$name"; use_helpers "$PAGES/$name" ;;
  esac
  chmod 755 "$PAGES/$name"
  pages+=("$doc:$name")
done
if [ ${#pages[@]} -gt 0 ]; then
  start_sessiond a
  start_nginx a
  for p in "${pages[@]}"; do
    doc=${p%%:*} name=${p#*:}
    rm -f "$JAR"
    get "/$name"
    expect_status 200 "$doc: page $name, first request"
    cp "$DIR/body" "$DIR/first"
    [ -n "$(cookie)" ] || fail "$doc: page $name stored nothing (no session cookie)"
    get "/$name"
    expect_status 200 "$doc: page $name, second request"
    ! cmp -s "$DIR/first" "$DIR/body" || fail "$doc: page $name answered the same twice: $(body)"
  done
  stack_stop
fi

# --- Shell blocks: each doc in a private copy of the machine.
mkdir -p "$DIR/shims"
# make: `make install [PREFIX=...] [DESTDIR=...]` as the Makefile runs it.
cat >"$DIR/shims/make" <<EOF
#!/bin/bash
target="" prefix=/usr/local destdir=""
for a; do case "\$a" in PREFIX=*) prefix=\${a#PREFIX=} ;; DESTDIR=*) destdir=\${a#DESTDIR=} ;; -*) ;; *) target=\$a ;; esac; done
[ "\$target" = install ] || { echo "make (docs test): only 'make install' runs here, not '\$*'" >&2; exit 1; }
DESTDIR=\$destdir exec cmake --install "$BUILD_DIR" --prefix "\$prefix" >/dev/null
EOF
# systemctl: no systemd runs here; the units it is asked to start are
# loaded and checked as systemd would (their drop-ins, ExecStart's binary),
# and a service's sessiond checks its settings (serve --test) in the state
# directory systemd would make for it.
cat >"$DIR/shims/systemctl" <<'EOF'
#!/bin/bash
# setting FILE KEY: the value of KEY= in unit FILE with its drop-ins (the last
# one; an empty one resets it, as for ExecStart=).
setting() {
  local name f line value=""
  name=$(basename "$1")
  for f in "$1" /usr/lib/systemd/system/"$name".d/*.conf /etc/systemd/system/"$name".d/*.conf; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do case "$line" in "$2="*) value=${line#"$2="} ;; esac; done <"$f"
  done
  echo "$value"
}
cmd=$1; shift
case "$cmd" in
  daemon-reload) exit 0 ;;
  enable|start|restart|reload-or-restart)
    units=()
    for u; do
      case "$u" in
        --now|-q|--quiet) ;;
        *.socket) units+=("$u" "${u%.socket}.service") ;;  # the service it starts
        *) units+=("$u") ;;
      esac
    done
    for u in "${units[@]}"; do
      f=""
      for d in /etc/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
        [ -f "$d/$u" ] && { f=$d/$u; break; }
      done
      [ -n "$f" ] || { echo "systemctl (docs test): no unit $u" >&2; exit 1; }
      out=$(systemd-analyze verify "$f" 2>&1) && [ -z "$out" ] || { echo "systemctl (docs test): $u: $out" >&2; exit 1; }
      case "$u" in *.service) ;; *) continue ;; esac
      state=$(setting "$f" StateDirectory)
      [ -z "$state" ] || install -d -m 0700 "/var/lib/$state"
      start=$(setting "$f" ExecStart)
      case "$start" in */sessiond\ serve*)
        # shellcheck disable=SC2086
        out=$(${start#[-@+!]} --test --allow-root 2>&1 >/dev/null) ||
          { echo "systemctl (docs test): $u: $start --test: $out" >&2; exit 1; } ;;
      esac
    done ;;
  *) echo "systemctl (docs test): '$cmd' needs a running systemd" >&2; exit 1 ;;
esac
EOF
chmod 755 "$DIR/shims/make" "$DIR/shims/systemctl"

# The namespace's first process: the private machine, the doc's blocks in
# one shell, then every process they left stopped by pid.
cat >"$DIR/machine.sh" <<'EOF'
set -u
doc_script=$1 upper=$2 log=$3 shims=$4
mount --make-rprivate /
mount -t tmpfs -o mode=0755 docs-test "$upper"
for f in hosts resolv.conf hostname; do cat "/etc/$f" >"$upper/$f" 2>/dev/null; done
for d in /etc /usr /var /srv /root /opt; do
  [ -d "$d" ] || { echo "docs test: no $d here to put an overlay on" >&2; exit 1; }
  mkdir -p "$upper/u$d" "$upper/w$d"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$upper/u$d,workdir=$upper/w$d" "$d" ||
    { echo "docs test: cannot put an overlay on $d" >&2; exit 1; }
done
# /etc/hosts and the like are often mounts of their own, which the overlay hides.
for f in hosts resolv.conf hostname; do [ -e "$upper/$f" ] && cat "$upper/$f" >"/etc/$f"; done
mount -t tmpfs -o mode=0755 run /run
# What every boot makes there (/run/lock, /run/php, /run/postgresql...).
systemd-tmpfiles --create --prefix=/run >/dev/null 2>&1
ip link set lo up
cd "$SESSIOND_SRC"
PATH="$shims:$PATH" HOME=/root timeout -k 5 50 bash -e -o pipefail "$doc_script" >"$log" 2>&1 </dev/null
status=$?
# What the servers said, for a failure's report.
if [ "$status" -ne 0 ]; then
  for f in /var/log/sessiond*.log /var/log/nginx/error.log /var/log/apache2/error.log /var/log/php*-fpm.log; do
    [ -s "$f" ] && { echo "--- $f"; tail -n 5 "$f"; } >>"$log"
  done
fi
# Stop what the blocks started (nginx, sessiond, PostgreSQL...), by pid.
left=$(ls /proc | grep -E '^[0-9]+$' | grep -vx -e 1 -e "$$")
for p in $left; do kill -TERM "$p" 2>/dev/null; done
for _ in $(seq 100); do
  alive=""
  for p in $left; do [ -e "/proc/$p" ] && [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive="$alive $p"; done
  [ -z "$alive" ] && break
  sleep 0.05
done
for p in $alive; do kill -KILL "$p" 2>/dev/null; done
exit $status
EOF

HELP=$("$SESSIOND" serve --help)
for doc in "${DOCS[@]}"; do
  key=${doc//\//_}
  compgen -G "$DIR/blocks/$key.*.run" >/dev/null || compgen -G "$DIR/blocks/$key.*.systemd" >/dev/null || continue
  script="$DIR/$key.sh"
  : >"$script"
  for b in "$DIR/blocks/$key".*; do
    case "$b" in *.run|*.systemd) cat "$b" >>"$script" ;; esac
  done
  # Options another branch adds: a doc that uses one runs once sessiond has it.
  missing=""
  for opt in --socket-owner --socket-group; do
    grep -q -- "$opt" "$script" && ! grep -q -- "  $opt " <<<"$HELP" && missing="$missing $opt"
  done
  if [ -n "$missing" ]; then
    echo "docs.sh: $doc not run: it uses$missing, which this sessiond lacks" >&2
    continue
  fi
  mkdir -p "$DIR/ns.$key"
  SESSIOND_SRC=$SESSIOND_SRC timeout -k 5 75 unshare --mount --net --pid --fork --kill-child --mount-proc \
    bash "$DIR/machine.sh" "$script" "$DIR/ns.$key" "$DIR/$key.log" "$DIR/shims"
  status=$?
  [ "$status" -eq 0 ] || fail "$doc: its commands failed (exit $status): $(tail -n 30 "$DIR/$key.log")
--- the commands:
$(cat "$script")"
done
exit 0
