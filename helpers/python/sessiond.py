"""sessiond's session for a Python page: read it, change it.

A page (a CGI program sessiond runs) gets its session in its environment and
asks for changes in its response headers (docs/pages.md). This module reads
the one and writes the other, so a page carries no parser of its own:

    import sys
    sys.path.insert(0, "/usr/share/sessiond/python")
    import sessiond

    session = sessiond.Session()
    visits = int(session.get("visits", 0)) + 1
    session.set("visits", visits)
    sys.stdout.write("Content-Type: text/plain\\r\\n")
    sys.stdout.write(session.headers())
    sys.stdout.write("\\r\\n")

Keys and values are str. Session bytes that are not UTF-8 arrive as lone
surrogates (Python's "surrogateescape", as in os.environ) and go back as the
same bytes, so every item round-trips. An item is a string or JSON (its type
is kept beside it, whichever language wrote it): get() gives a JSON item as
its Python value, text() as its JSON text.

Python 3.7 or later, standard library only.
"""

import os

__all__ = ["Session", "encode", "decode"]

# json (and with it re) is imported only for a JSON value that is no integer,
# and urllib.parse not at all: a page that reads strings and integers starts
# without them, which halves what the module costs a page.
_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_ESCAPE = [chr(b) if b in _UNRESERVED else "%%%02X" % b for b in range(256)]
_HEX = {("%02x" % b).encode(): bytes([b]) for b in range(256)}
_HEX.update({k.upper(): v for k, v in list(_HEX.items())})
_HEX.update({k[:1] + k[1:].upper(): v for k, v in list(_HEX.items())})
_HEX.update({k[:1].upper() + k[1:]: v for k, v in list(_HEX.items())})
_INTEGER_DIGITS = 15  # JSON integers every language holds exactly


def _bytes(text):
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8", "surrogateescape")
    raise TypeError("a session key or text is a str, not %s" % type(text).__name__)


def _str(text):
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text


def encode(text):
    """Percent-encodes every byte of text (str or bytes) that is not RFC 3986
    unreserved, as sessiond does: what a directive's key or value must be."""
    return "".join([_ESCAPE[b] for b in _bytes(text)])


def decode(text):
    """Decodes %XX escapes and '+' (a space) to str. A '%' that starts no
    escape stays as it is."""
    parts = _bytes(text).replace(b"+", b" ").split(b"%")
    out = [parts[0]]
    for part in parts[1:]:
        byte = _HEX.get(part[:2])
        out += (byte, part[2:]) if byte else (b"%", part)
    return b"".join(out).decode("utf-8", "surrogateescape")


def _is_integer(text):
    digits = text[1:] if text[:1] == "-" else text
    return 0 < len(digits) <= _INTEGER_DIGITS and digits.isdigit() and digits.isascii() \
        and (digits == "0" or digits[0] != "0")


def _pairs(text):
    """'k=v&k=v' (HTTP_SESSION's format) -> [(key, value)], decoded."""
    pairs = []
    for pair in text.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            pairs.append((decode(key), decode(value)))
    return pairs


class Session:
    """The request's session, as sessiond gave it to the page, and the
    changes the page asks for (sent by headers()).

    Reads the environment once, when made: HTTP_SESSION, or the file that
    SESSION_FILE names when the session is too large for one environment
    variable (128 KiB or more); the types from SESSION_TYPES (or the file's
    second line). A change also shows in what this object reads back.
    """

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        text, types = env.get("HTTP_SESSION"), env.get("SESSION_TYPES")
        if text is None and env.get("SESSION_FILE"):
            with open(env["SESSION_FILE"], "rb") as f:
                lines = f.read().split(b"\n")
            text = lines[0].decode("ascii", "surrogateescape")
            if types is None and len(lines) > 1:
                types = lines[1].decode("ascii", "surrogateescape")
        self._items = dict(_pairs(text or ""))
        self._json = {decode(k) for k in (types or "").split("&") if k}
        self._json.update(k[len("SESSION_TYPE_"):] for k, v in env.items()
                          if k.startswith("SESSION_TYPE_") and v == "json")
        self._lines = []
        #: The session id ("" when the visitor has none yet).
        self.id = env.get("SESSION_ID", "")
        #: True when the visitor has no session yet.
        self.new = env.get("SESSION_NEW") == "1"
        #: The location's SESSION_MODE: off, read, write or exclusive.
        self.mode = env.get("SESSION_MODE", "")
        #: SESSION_STATUS: new, ok, expired, regenerated or unavailable ("" on
        #: an off location).
        self.status = env.get("SESSION_STATUS", "")

    # --- Reading.

    def __contains__(self, key):
        return key in self._items

    def __iter__(self):
        return iter(sorted(self._items))

    def __len__(self):
        return len(self._items)

    def keys(self):
        return sorted(self._items)

    def type(self, key):
        """'string', 'json', or None when there is no such item."""
        if key not in self._items:
            return None
        return "json" if key in self._json else "string"

    def text(self, key, default=None):
        """The item as stored: a string's text, a JSON item's JSON text."""
        return self._items.get(key, default)

    def get(self, key, default=None):
        """A string item's text, a JSON item's value (int, list, dict, ...)."""
        if key not in self._items:
            return default
        text = self._items[key]
        if key not in self._json:
            return text
        if _is_integer(text):
            return int(text)
        import json
        return json.loads(text)

    def __getitem__(self, key):
        if key not in self._items:
            raise KeyError(key)
        return self.get(key)

    @property
    def writable(self):
        """Whether a change may be sent: a write or exclusive location (or no
        SESSION_MODE: not under sessiond) with the store available."""
        return self.mode in ("write", "exclusive", "") and self.status != "unavailable"

    # --- Changing.

    def set(self, key, value):
        """Stores value: a str (or bytes) as a string, anything else (int,
        float, bool, None, list, dict) as JSON."""
        key, value = _str(key), _str(value)
        if not isinstance(value, str):
            return self.set_json(key, value)
        self._directive("X-Session-Set", encode(key) + "=" + encode(value))
        self._items[key] = value
        self._json.discard(key)
        return self

    def set_json(self, key, value):
        """Stores value as JSON, whatever its Python type (a str becomes a
        JSON string)."""
        key = _str(key)
        if type(value) is int and _is_integer(str(value)):  # not bool, which is an int too
            text = str(value)
        else:
            import json
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            try:
                # A str read from bytes that are not UTF-8 holds surrogate
                # escapes, which JSON text cannot: sessiond would answer the
                # whole response with a 502.
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("session value for %r is not UTF-8 text, which JSON needs: "
                                 "store those bytes with set() as a string" % key) from None
        self._directive("X-Session-Set-Json", encode(key) + "=" + encode(text))
        self._items[key] = text
        self._json.add(key)
        return self

    __setitem__ = set

    def remove(self, key):
        key = _str(key)
        self._directive("X-Session-Remove", encode(key))
        self._items.pop(key, None)
        self._json.discard(key)
        return self

    __delitem__ = remove

    def clear(self):
        """Removes every item; the session and its id stay."""
        self._directive("X-Session-Clear", "1")
        self._items.clear()
        self._json.clear()
        return self

    def regenerate(self):
        """Moves the session to a new id (do it at login)."""
        self._directive("X-Session-Regenerate", "1")
        return self

    def abandon(self):
        """Deletes the session and expires the cookie (a logout)."""
        self._directive("X-Session-Abandon", "1")
        self._items.clear()
        self._json.clear()
        return self

    def _directive(self, name, value):
        self._lines.append("%s: %s\r\n" % (name, value))

    def headers(self):
        """The changes asked for so far, as header lines (each ending in
        CRLF), in order: write them among the page's headers."""
        return "".join(self._lines)
