# sessiond's session for a sh page: read it, change it. POSIX sh (dash),
# with od and awk; source it, do not run it:
#
#   . /usr/share/sessiond/sh/sessiond.sh
#   n=$(( $(session_get visits 0) + 1 ))
#   printf 'Content-Type: text/plain\r\n'
#   session_set visits "$n"
#   printf '\r\n'
#
# Reading (the session as sessiond gave it: HTTP_SESSION and SESSION_VAR_*,
# or the file SESSION_FILE names when it is 128 KiB or more):
#   session_get KEY [DEFAULT]  prints the item (a JSON item's JSON text);
#                              absent: prints DEFAULT, or fails (status 1)
#   session_let VAR KEY [DEFAULT]  sets the page's variable VAR to what
#                              session_get prints (absent, no DEFAULT: fails,
#                              VAR unchanged), without the process a
#                              $(session_get ...) costs
#   session_has KEY            succeeds when the item exists
#   session_type KEY           prints string or json; fails when absent
#   session_keys               prints every key, one a line
#   session_status             prints new, ok, expired, regenerated or unavailable
#   session_writable           succeeds when a change may be sent (a write or
#                              exclusive location, the store available)
# Changing: each prints one header line, key and value percent-encoded, so
# call them among the page's headers (before the blank line):
#   session_set KEY VALUE, session_set_json KEY JSON, session_remove KEY,
#   session_clear, session_regenerate, session_abandon
#   session_encode TEXT        prints TEXT percent-encoded
#   session_decode TEXT        prints TEXT percent-decoded ('+' a space), as a
#                              form field
#
# Keys and values are bytes, any but NUL (which no shell variable holds).
# $(session_get KEY) drops trailing newlines, as every command substitution
# does; session_get KEY >file keeps them. The functions change no variable
# of the page's: theirs are named _sessiond_*.

# session_encode TEXT: every byte that is not RFC 3986 unreserved as %XX, as
# sessiond encodes. Text that needs no escape costs no process.
session_encode() {
  case $1 in
    *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-]*) ;;
    *) printf '%s' "$1"; return 0 ;;
  esac
  printf '%s' "$1" | od -An -v -tx1 | LC_ALL=C awk '
    BEGIN {
      keep = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-"
      for (i = 32; i < 127; i++) code[sprintf("%c", i)] = i
      for (i = 1; i <= length(keep); i++) { c = substr(keep, i, 1); plain[sprintf("%02X", code[c])] = c }
    }
    { for (i = 1; i <= NF; i++) { h = toupper($i); if (h in plain) printf "%s", plain[h]; else printf "%%%s", h } }'
}

# session_decode TEXT: %XX escapes and '+' (a space) decoded, as in a form
# (a '%' that starts no escape stays as it is).
session_decode() {
  case $1 in
    *[%+]*) printf '%s' "$1" | _sessiond_awk decode ;;
    *) printf '%s' "$1" ;;
  esac
}

# _sessiond_scan get KEY | keys: the items' text (HTTP_SESSION, else the
# first line of SESSION_FILE) through awk: the decoded value of the item
# KEY (fails when there is none), or every decoded key. KEY reaches awk
# through its environment, byte for byte (-v would read escapes in it).
# Values are printed piece by piece, never built up, so a value of
# megabytes takes linear time.
_sessiond_scan() {
  if [ "${HTTP_SESSION+set}" ]; then
    printf '%s' "$HTTP_SESSION" | _sessiond_awk "$@"
  elif [ -n "${SESSION_FILE-}" ]; then
    _sessiond_awk "$@" <"$SESSION_FILE"
  else
    [ "$1" = keys ]
  fi
}
_sessiond_awk() {
  LC_ALL=C _sessiond_key=${2-} awk -v mode="$1" '
    BEGIN {
      RS = "&"
      for (i = 0; i < 256; i++) { h = sprintf("%02x", i); byte[h] = i; byte[toupper(h)] = i }
      key = ENVIRON["_sessiond_key"]
    }
    # The decoded text, as a string (for keys: short).
    function text(s,   n, parts, i, h, out) {
      gsub(/\+/, " ", s)
      n = split(s, parts, "%")
      out = parts[1]
      for (i = 2; i <= n; i++) {
        h = substr(parts[i], 1, 2)
        out = out ((h in byte) ? sprintf("%c", byte[h]) substr(parts[i], 3) : "%" parts[i])
      }
      return out
    }
    function put(s,   n, parts, i, h) {
      gsub(/\+/, " ", s)
      n = split(s, parts, "%")
      printf "%s", parts[1]
      for (i = 2; i <= n; i++) {
        h = substr(parts[i], 1, 2)
        if (h in byte) printf "%c%s", byte[h], substr(parts[i], 3)
        else printf "%%%s", parts[i]
      }
    }
    mode == "decode" { if (NR > 1) printf "&"; put($0); next }
    {
      # The items end at the first newline (what follows in SESSION_FILE is not an item).
      last = index($0, "\n")
      if (last) $0 = substr($0, 1, last - 1)
      eq = index($0, "=")
      if (mode == "get") {
        if (eq && text(substr($0, 1, eq - 1)) == key) { put(substr($0, eq + 1)); found = 1; exit }
      } else if ($0 != "") {
        put(eq ? substr($0, 1, eq - 1) : $0); printf "\n"
      }
      if (last) exit
    }
    END { exit (mode == "get" && !found) }'
}

# _sessiond_name KEY: succeeds when KEY is a shell name, so SESSION_VAR_KEY
# may hold it.
_sessiond_name() {
  case $1 in
    '' | [0123456789]* | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_]*) return 1 ;;
  esac
}

# _sessiond_absent KEY: succeeds when KEY surely has no item, known without
# a process: under sessiond (SESSION_MODE set), with the whole session in
# HTTP_SESSION, every item named like a shell variable has its SESSION_VAR_
# (unless some value holds a NUL, %00, which has none). mod_session sets no
# SESSION_VAR_.
_sessiond_absent() {
  _sessiond_name "$1" && [ "${SESSION_MODE+set}" ] || return 1
  case ${HTTP_SESSION-%00} in *%00*) return 1 ;; esac
}

session_get() {
  # sessiond sets SESSION_VAR_KEY for each such item that fits in an
  # environment variable, and strips any a client sent.
  if _sessiond_name "$1" && eval "[ \"\${SESSION_VAR_$1+set}\" ]"; then
    eval "printf '%s' \"\$SESSION_VAR_$1\""
    return 0
  fi
  if ! _sessiond_absent "$1"; then
    _sessiond_scan get "$1" && return 0
  fi
  [ $# -ge 2 ] || return 1
  printf '%s' "$2"
}

# A page's own variable, set from the session: most items a page reads are
# small and named like shell variables, so sessiond gave them as
# SESSION_VAR_KEY, and a plain assignment does what $(session_get KEY)
# does at the cost of a fork. Anything else goes through session_get.
session_let() {
  _sessiond_name "$1" || { echo "session_let: '$1' is not a variable name" >&2; return 2; }
  if _sessiond_name "$2" && eval "[ \"\${SESSION_VAR_$2+set}\" ]"; then
    eval "$1=\$SESSION_VAR_$2"
    return 0
  fi
  if _sessiond_absent "$2"; then
    [ $# -ge 3 ] || return 1
    eval "$1=\$3"
    return 0
  fi
  if [ $# -ge 3 ]; then _sessiond_v=$(session_get "$2" "$3"); else _sessiond_v=$(session_get "$2"); fi
  _sessiond_r=$?
  [ $_sessiond_r -ne 0 ] || eval "$1=\$_sessiond_v"
  return $_sessiond_r
}

session_has() { session_get "$1" >/dev/null; }

session_keys() { _sessiond_scan keys; }

# SESSION_TYPES names every JSON item (keys percent-encoded, '&' between); a
# session in SESSION_FILE has it on the file's second line.
session_type() {
  session_has "$1" || return 1
  if _sessiond_name "$1" && eval "[ \"\${SESSION_TYPE_$1-}\" = json ]"; then
    printf 'json\n'
    return 0
  fi
  if [ "${SESSION_TYPES+set}" ]; then
    _sessiond_types=$SESSION_TYPES
  elif [ -n "${SESSION_FILE-}" ]; then
    _sessiond_types=$(sed -n '2{p;q;}' "$SESSION_FILE")
  else
    _sessiond_types=""
  fi
  case "&$_sessiond_types&" in
    *"&$(session_encode "$1")&"*) printf 'json\n' ;;
    *) printf 'string\n' ;;
  esac
}

# SESSION_STATUS (empty on an off location).
session_status() { printf '%s\n' "${SESSION_STATUS-}"; }

session_writable() {
  case ${SESSION_MODE-} in write | exclusive | '') ;; *) return 1 ;; esac
  [ "${SESSION_STATUS-}" != unavailable ]
}

session_set() {
  printf 'X-Session-Set: %s=%s\r\n' "$(session_encode "$1")" "$(session_encode "$2")"
}
# session_set_json KEY JSON: JSON is JSON text (3, "text", {"apple":1});
# sessiond refuses text that is not JSON (the page then gets a 502).
session_set_json() {
  printf 'X-Session-Set-Json: %s=%s\r\n' "$(session_encode "$1")" "$(session_encode "$2")"
}
session_remove() { printf 'X-Session-Remove: %s\r\n' "$(session_encode "$1")"; }
session_clear() { printf 'X-Session-Clear: 1\r\n'; }
session_regenerate() { printf 'X-Session-Regenerate: 1\r\n'; }
session_abandon() { printf 'X-Session-Abandon: 1\r\n'; }
