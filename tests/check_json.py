#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# check_json.py: the JSON side of tests/test_check.c. Parses what tlsclient --json or
# tlsserver --log-format json wrote, validates it against a JSON Schema (Debian's
# python3-jsonschema), and prints the values at the given paths for the C test to check.
#
# Usage: check_json.py [--schema FILE] [--lines] FILE [PATH...]
#   FILE     holds exactly one JSON object on one line; with --lines, every line that
#            starts with '{' is one object (other lines are skipped)
#   PATH     dotted keys and array indexes: chain.0.subject
# Prints "I:PATH=VALUE" for each object I and path (VALUE as JSON, non-ASCII kept;
# "<missing>" when absent). Exit 0, or 1 with the reason on stderr.
import json
import sys


def fail(msg):
    print("check_json.py: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    args = sys.argv[1:]
    schema = None
    lines = False
    while args and args[0].startswith("--"):
        if args[0] == "--schema":
            schema = json.load(open(args[1], encoding="utf-8"))
            args = args[2:]
        elif args[0] == "--lines":
            lines = True
            args = args[1:]
        else:
            fail("unknown option " + args[0])
    if not args:
        fail("no file")
    raw = open(args[0], "rb").read()
    try:
        text = raw.decode("utf-8")  # strict: invalid UTF-8 fails the test
    except UnicodeDecodeError as e:
        fail("not UTF-8: %s" % e)
    if lines:
        docs = [l for l in text.split("\n") if l.startswith("{")]
    else:
        if not text.endswith("\n") or text.count("\n") != 1:
            fail("expected one object on one line, got %r" % text[:200])
        docs = [text]
    if not docs:
        fail("no JSON object in %r" % text[:200])

    def strict_constant(c):
        fail("non-standard constant " + c)

    objs = []
    for d in docs:
        try:
            o = json.loads(d, parse_constant=strict_constant)
        except json.JSONDecodeError as e:
            fail("invalid JSON (%s): %r" % (e, d[:300]))
        if not isinstance(o, dict):
            fail("not an object: %r" % d[:200])
        objs.append(o)
    if schema is not None:
        import jsonschema
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        for i, o in enumerate(objs):
            errors = sorted(cls(schema).iter_errors(o), key=lambda e: list(e.path))
            if errors:
                fail("object %d does not match the schema: %s at %s" %
                     (i, errors[0].message, "/".join(str(p) for p in errors[0].path)))
    for i, o in enumerate(objs):
        for path in args[1:]:
            v = o
            for part in path.split("."):
                if isinstance(v, list) and part.isdigit() and int(part) < len(v):
                    v = v[int(part)]
                elif isinstance(v, dict) and part in v:
                    v = v[part]
                else:
                    v = "<missing>"
                    break
            out = v if v == "<missing>" else json.dumps(v, ensure_ascii=False)
            print("%d:%s=%s" % (i, path, out))


main()
