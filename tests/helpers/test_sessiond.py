"""Unit tests of helpers/python/sessiond.py (ctest helpers.python):
python3 -m unittest discover -s tests/helpers -p 'test_*.py'."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "helpers", "python"))
import sessiond  # noqa: E402

# Keys and values that break a naive encoder or parser: every one must
# round-trip. (bytes that are not UTF-8 arrive as surrogates, as in os.environ.)
AWKWARD = ["&", "=", "%", "+", "a b", "line\nbreak\n", "\r", "caf\u00e9 \u20ac \U0001F600", "", "%41",
           "x=y&z=w", "\udcff\udc80", "~-._", "\t", "\"'\\$`"]


def parse_directive(line):
    """What sessiond does with an X-Session-Set line: split at the first '=',
    percent-decode both halves ('+' a space)."""
    name, _, value = line.rstrip("\r\n").partition(": ")
    key, _, val = value.partition("=")
    return name, sessiond.decode(key), sessiond.decode(val)


class Coding(unittest.TestCase):
    def test_encodes_every_byte_but_unreserved(self):
        self.assertEqual(sessiond.encode("AZaz09-._~"), "AZaz09-._~")
        self.assertEqual(sessiond.encode("& =%+\n"), "%26%20%3D%25%2B%0A")
        self.assertEqual(sessiond.encode("\u20ac"), "%E2%82%AC")
        self.assertEqual(sessiond.encode(b"\xff\x00"), "%FF%00")
        self.assertEqual(sessiond.encode(""), "")
        self.assertEqual(sessiond.encode("/?#[]@!$'()*,;:"), "%2F%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A")

    def test_decodes_plus_and_escapes_of_either_case(self):
        self.assertEqual(sessiond.decode("a+b%20c%2b%2B%e2%82%AC"), "a b c++\u20ac")
        self.assertEqual(sessiond.decode("%aB%Cd%41"), "\udcab\udccdA")
        self.assertEqual(sessiond.decode("100%"), "100%")
        self.assertEqual(sessiond.decode("%zz%4"), "%zz%4")

    def test_round_trip(self):
        for text in AWKWARD + ["".join(chr(c) for c in range(1, 128))]:
            self.assertEqual(sessiond.decode(sessiond.encode(text)), text, repr(text))

    def test_rejects_what_is_no_text(self):
        with self.assertRaises(TypeError):
            sessiond.encode(3)


def environ_with(items, types=(), **extra):
    env = {"HTTP_SESSION": "&".join(sessiond.encode(k) + "=" + sessiond.encode(v) for k, v in items),
           "SESSION_ID": "abc", "SESSION_NEW": "0", "SESSION_MODE": "write"}
    if types:
        env["SESSION_TYPES"] = "&".join(sessiond.encode(k) for k in types)
    env.update(extra)
    return env


class Reading(unittest.TestCase):
    def test_every_awkward_key_and_value_reads_back(self):
        items = [(k + "k", v) for k, v in zip(AWKWARD, reversed(AWKWARD))]
        s = sessiond.Session(environ_with(items))
        for k, v in items:
            self.assertEqual(s.get(k), v, repr(k))
            self.assertEqual(s.type(k), "string")
        self.assertEqual(len(s), len(items))

    def test_reads_mod_session_text_with_plus(self):
        s = sessiond.Session({"HTTP_SESSION": "user=ann+lee&&x=%7e&empty="})
        self.assertEqual((s.get("user"), s.get("x"), s.get("empty")), ("ann lee", "~", ""))
        self.assertEqual(s.keys(), ["empty", "user", "x"])

    def test_json_items_by_type(self):
        s = sessiond.Session(environ_with([("visits", "3"), ("cart", '{"apple":1}'), ("name", "3"),
                                           ("a b", "[1,2]")], types=["visits", "cart", "a b"]))
        self.assertEqual(s.get("visits"), 3)
        self.assertEqual(s.get("cart"), {"apple": 1})
        self.assertEqual(s.get("a b"), [1, 2])
        self.assertEqual(s.text("cart"), '{"apple":1}')
        self.assertEqual(s.get("name"), "3")
        self.assertEqual((s.type("cart"), s.type("name"), s.type("none")), ("json", "string", None))
        self.assertEqual(int(s.get("visits")) + int(s.get("name")), 6)

    def test_session_type_variables_count_too(self):
        s = sessiond.Session(environ_with([("n", "3")], SESSION_TYPE_n="json"))
        self.assertEqual(s.get("n"), 3)

    def test_absent(self):
        s = sessiond.Session({})
        self.assertIsNone(s.get("x"))
        self.assertEqual(s.get("x", 0), 0)
        self.assertNotIn("x", s)
        with self.assertRaises(KeyError):
            s["x"]

    def test_large_session_from_the_file(self):
        # Over 128 KiB: sessiond sets no HTTP_SESSION but SESSION_FILE, the
        # same text (and the types on a second line).
        big = "\u20ac" * 50000  # 150 kB, 450 kB encoded
        text = "big=" + sessiond.encode(big) + "&n=4&s=x%26y"
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write(text + "\nn")
        try:
            s = sessiond.Session({"SESSION_FILE": f.name, "SESSION_NEW": "0"})
            self.assertEqual(s.get("big"), big)
            self.assertEqual((s.get("n"), s.get("s")), (4, "x&y"))
            with open(f.name, "w") as g:
                g.write(text)
            s = sessiond.Session({"SESSION_FILE": f.name})
            self.assertEqual((s.get("big"), s.get("n")), (big, "4"))
        finally:
            os.unlink(f.name)

    def test_status_and_mode(self):
        s = sessiond.Session({"SESSION_STATUS": "expired", "SESSION_NEW": "1", "SESSION_MODE": "read", "SESSION_ID": ""})
        self.assertEqual((s.status, s.mode, s.new, s.id, s.writable), ("expired", "read", True, "", False))
        self.assertEqual(sessiond.Session({"SESSION_MODE": "off"}).status, "")
        self.assertTrue(sessiond.Session({"SESSION_MODE": "exclusive"}).writable)
        self.assertFalse(sessiond.Session({"SESSION_MODE": "write", "SESSION_STATUS": "unavailable"}).writable)
        self.assertFalse(sessiond.Session({"SESSION_MODE": "off"}).writable)


class Changing(unittest.TestCase):
    def test_set_encodes_so_every_item_round_trips(self):
        s = sessiond.Session({})
        for k in AWKWARD:
            if k:
                s.set(k, k + "=v&")
        lines = s.headers().split("\r\n")
        self.assertEqual(lines[-1], "")
        for line in lines[:-1]:
            self.assertRegex(line, r"^X-Session-Set: [A-Za-z0-9%._~-]+=[A-Za-z0-9%._~-]*$")
            name, key, value = parse_directive(line)
            self.assertEqual(value, key + "=v&")

    def test_types_of_set(self):
        s = sessiond.Session({})
        s.set("s", "3").set("n", 3).set("b", b"\xff").set("l", {"apple": 1, "pear": [True, None]})
        s.set_json("js", "3")
        self.assertEqual(s.headers(),
                         "X-Session-Set: s=3\r\n"
                         "X-Session-Set-Json: n=3\r\n"
                         "X-Session-Set: b=%FF\r\n"
                         "X-Session-Set-Json: l=%7B%22apple%22%3A1%2C%22pear%22%3A%5Btrue%2Cnull%5D%7D\r\n"
                         "X-Session-Set-Json: js=%223%22\r\n")
        self.assertEqual((s.get("s"), s.get("n"), s.get("js"), s.type("n"), s.type("s")), ("3", 3, "3", "json", "string"))
        with self.assertRaises(ValueError):
            s.set("x", float("nan"))

    def test_json_of_bytes_that_are_not_utf8_is_refused_here(self):
        # A string item of other bytes reads as str with surrogate escapes:
        # JSON cannot hold them (sessiond would refuse the whole response
        # with a 502), so the page is told at the call, and nothing is sent.
        s = sessiond.Session({"HTTP_SESSION": "bin=%FF%80", "SESSION_MODE": "write"})
        for value in (s.get("bin"), [s.get("bin")], {s.get("bin"): 1}):
            with self.assertRaises(ValueError):
                s.set_json("copy", value)
        self.assertEqual(s.headers(), "")
        self.assertNotIn("copy", s)
        s.set("copy", s.get("bin"))  # as a string it is its bytes again
        self.assertEqual(s.headers(), "X-Session-Set: copy=%FF%80\r\n")

    def test_every_directive(self):
        s = sessiond.Session(environ_with([("a", "1"), ("b c", "2")]))
        s.remove("b c")
        self.assertNotIn("b c", s)
        s.clear()
        self.assertEqual(len(s), 0)
        s["k"] = "v"
        del s["k"]
        s.regenerate().abandon()
        self.assertEqual(s.headers(),
                         "X-Session-Remove: b%20c\r\n"
                         "X-Session-Clear: 1\r\n"
                         "X-Session-Set: k=v\r\n"
                         "X-Session-Remove: k\r\n"
                         "X-Session-Regenerate: 1\r\n"
                         "X-Session-Abandon: 1\r\n")

    def test_integers_need_no_json_module(self):
        # A page that reads strings and integers and stores integers does not
        # pay for importing json (a separate python: this one has imported it).
        import subprocess
        script = ("import sys; sys.path.insert(0, %r); import sessiond; s = sessiond.Session();"
                  "s.set('visits', s.get('visits') + 1); s.get('name');"
                  "sys.stdout.write(s.headers() + str('json' in sys.modules))" % os.path.dirname(sessiond.__file__))
        env = dict(os.environ, HTTP_SESSION="visits=41&name=ann", SESSION_TYPES="visits")
        out = subprocess.run([sys.executable, "-S", "-c", script], env=env, stdout=subprocess.PIPE, check=True).stdout
        self.assertEqual(out, b"X-Session-Set-Json: visits=42\r\nFalse")

    def test_numbers_of_every_kind(self):
        s = sessiond.Session(environ_with([("neg", "-7"), ("f", "1.5"), ("big", "123456789012345678"), ("z", "0")],
                                          types=["neg", "f", "big", "z"]))
        self.assertEqual((s.get("neg"), s.get("f"), s.get("big"), s.get("z")), (-7, 1.5, 123456789012345678, 0))
        s.set("t", True).set("i", -12).set("h", 10 ** 20)
        self.assertEqual(s.headers(), "X-Session-Set-Json: t=true\r\nX-Session-Set-Json: i=-12\r\n"
                                      "X-Session-Set-Json: h=100000000000000000000\r\n")

    def test_nothing_asked_nothing_sent(self):
        self.assertEqual(sessiond.Session({}).headers(), "")


if __name__ == "__main__":
    unittest.main()
