#!/usr/bin/env python3
"""Prints the link order for cross/ordered-cc: the functions of the mmrelay binary that
callgrind saw executed, hottest first (by their own cost), as the linker names them.

usage: order.py CALLGRIND_OUT...   (outputs of `mmrelay auth ...` are skipped; callgrind must
have been run with --demangle=no --compress-strings=no on an unstripped binary)"""
import collections
import re
import sys


def costs(paths):
    total = collections.Counter()
    for path in paths:
        text = open(path).read()
        cmd = re.search(r"^cmd: (.*)$", text, re.M)
        if cmd and " auth " in cmd.group(1) + " ":
            continue
        ob, fn, skip = "", None, False
        for line in text.splitlines():
            if line.startswith("ob="):
                ob = line[3:]
            elif line.startswith("fn="):
                # "name'2" is the same function seen recursively
                name = line[3:].split("'")[0]
                fn = name if ob.endswith("/mmrelay") and not name.startswith("0x") else None
                if fn:
                    total[fn] += 0
            elif line.startswith("calls="):
                skip = True  # the next line is the call's inclusive cost, not fn's own
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip:
                    skip = False
                elif fn is not None:
                    parts = line.split()
                    if len(parts) > 1:
                        total[fn] += int(parts[1])
    return total


for name, _ in sorted(costs(sys.argv[1:]).items(), key=lambda kv: (-kv[1], kv[0])):
    if name != "(below main)":
        print(name)
