#!/usr/bin/env python3
"""The source's layers, checked: which folder may include which, and no
include cycles. Usage: layers.py SOURCE_DIR. Prints each violation and exits
1; silent and 0 when the house is in order.

The layers (docs/source-tour.md): log <- store <- commands; within middleware/
base <- fastcgi <- server, base/fastcgi/store <- runners <- request_path <- the process
(middleware/ itself). An engine folder of store/ is reached only by
store/open.cc, which picks the engine for --db; nothing else names one.
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."

# Folder -> the folders its files may include (besides their own).
ALLOWED = {
    "log": [],
    "store": ["log"],
    "store/sqlite": ["store", "log"],
    "store/postgres": ["store", "log"],
    "commands": ["store", "log"],
    "middleware/base": ["store", "log"],
    "middleware/fastcgi": [],
    "middleware/server": ["middleware/base", "middleware/fastcgi", "log"],
    "middleware/runners": ["middleware/base", "middleware/fastcgi", "store", "log"],
    "middleware/request_path": ["middleware/runners", "middleware/base", "store", "log"],
    "middleware": ["middleware/request_path", "middleware/runners", "middleware/server", "middleware/base",
                   "commands", "store", "log"],
}
# The one file that names the engines: it opens the one --db names.
ENGINE_OPENERS = {"store/open.cc"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder(path):
    return os.path.dirname(path)


def main():
    files = {}
    for top in ALLOWED:
        d = os.path.join(ROOT, top)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith((".h", ".cc")):
                rel = f"{top}/{name}"
                with open(os.path.join(ROOT, rel)) as f:
                    files[rel] = INCLUDE.findall(f.read())
    problems = []
    for rel, includes in files.items():
        here = folder(rel)
        for inc in includes:
            there = folder(inc)
            if there == here:
                continue
            ok = there in ALLOWED[here]
            if there in ("store/sqlite", "store/postgres"):
                ok = rel in ENGINE_OPENERS
            if not ok:
                problems.append(f"{rel} includes {inc}: {here or '.'}/ may not reach {there}/")
            if inc not in files and there in ALLOWED:
                problems.append(f"{rel} includes {inc}, which does not exist")
    # No cycles among the headers (a .cc is never included).
    state = {}

    def visit(h, stack):
        state[h] = 1
        for inc in files.get(h, []):
            if state.get(inc) == 1:
                problems.append("include cycle: " + " -> ".join(stack[stack.index(inc):] + [inc]))
            elif inc in files and inc not in state:
                visit(inc, stack + [inc])
        state[h] = 2

    for h in files:
        if h.endswith(".h") and h not in state:
            visit(h, [h])
    # Every folder of sources is in the map: a new one (a third store engine,
    # a new role) says where it stands, or this check would not see it.
    for top in ("log", "store", "commands", "middleware"):
        for d, _, names in os.walk(os.path.join(ROOT, top)):
            rel = os.path.relpath(d, ROOT)
            if any(n.endswith((".h", ".cc")) for n in names) and rel not in ALLOWED:
                problems.append(f"{rel}/ holds sources but has no place in the layers (ALLOWED in {sys.argv[0]})")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
