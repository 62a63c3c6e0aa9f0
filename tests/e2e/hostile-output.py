#!/usr/bin/env python3
"""Checks of the documents fshield writes, for 19-hostile-output.sh. Every name is handled as bytes and
passed on command lines in hex, so no shell quoting gets between the hostile input and the check.

A JSON value that carries a name decodes as docs/CLI.md says: KEY_b64 (base64 of the exact bytes) when
the name is not UTF-8, and then KEY is bytes.decode("utf-8", "backslashreplace"); otherwise KEY itself.
"""
import base64, json, os, shlex, sys

import yaml

# Hostile names: quotes, backslashes, a newline, YAML and JSON syntax, control characters, bytes that are
# not UTF-8 (alone, in broken sequences, surrogates, above U+10FFFF), text that looks like the escape
# itself, and a long one. None has a '/' or a NUL: they are file names.
NAMES = [
    b'q"uote',
    b"back\\slash\\",
    b"new\nline",
    b'colon: "x',
    b"- yaml: &a *a {json: [1]}",
    b"ctl\x01\x1b[31m\x7f\t",
    b"bad\xffbyte",
    b"mixed\xc3(\xe2\x82\xed\xa0\x80\xf4\x90\x80\x80 ok \xc3\xa9",
    b"overlong\xc0\xaf\xe0\x80\xaf emoji \xf0\x9f\x94\x91 cut \xf0\x9f\x94",
    b"\\xff looks escaped",
    b"L" * 180 + b'"\\\n' + "é".encode() * 30,
]


def fail(msg):
    print("hostile-output.py: " + msg, file=sys.stderr)
    sys.exit(1)


def load_json(path):
    raw = open(path, "rb").read()
    try:
        return json.loads(raw.decode("utf-8"))  # strict: JSON text is UTF-8
    except (UnicodeDecodeError, ValueError) as e:
        fail("%s is not valid JSON (%s): %r" % (path, e, raw[:300]))


def decode(obj, key):
    """The exact bytes a JSON object's field KEY names, by the documented rule."""
    v = obj.get(key)
    if v is None:
        return None
    if key + "_b64" in obj:
        b = base64.b64decode(obj[key + "_b64"], validate=True)
        try:
            b.decode("utf-8")
            fail("%s_b64 given for a UTF-8 value %r" % (key, b))
        except UnicodeDecodeError:
            pass
        if v != b.decode("utf-8", "backslashreplace"):
            fail("%s is %r, not the documented rendering of %r" % (key, v, b))
        return b
    return v.encode("utf-8")


def cmd_create(d, size):
    for n in NAMES:
        with open(os.path.join(os.fsencode(d), n), "wb") as f:
            f.write(os.urandom(int(size)))


def cmd_inodes(d):
    for n in NAMES:
        print(os.stat(os.path.join(os.fsencode(d), n)).st_ino)


def cmd_findings(path, prefix_hex, kind):
    o = load_json(path)
    prefix = bytes.fromhex(prefix_hex)
    found = {}
    for f in o["findings"]:
        p = decode(f, "path")
        if p is not None and f["kind"] == kind:
            found[p] = decode(f, "message")
    for n in NAMES:
        want = prefix + n
        if want not in found:
            fail("%s: no %s finding about %r; paths: %r" % (path, kind, want, sorted(found)))
        if want not in found[want]:
            fail("%s: the message about %r does not name it: %r" % (path, want, found[want]))


def cmd_field(path, key, want_hex):
    got = decode(load_json(path), key)
    if got != bytes.fromhex(want_hex):
        fail("%s: %s is %r, expected %r" % (path, key, got, bytes.fromhex(want_hex)))


def cmd_yaml(path, name_hex, *paths_hex):
    text = open(path, "rb").read()
    try:
        doc = yaml.safe_load(text.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        fail("%s is not valid YAML (%s)" % (path, e))
    name = bytes.fromhex(name_hex).decode("utf-8")
    if doc.get("name") != name:
        fail("%s: name is %r, expected %r" % (path, doc.get("name"), name))
    vols = doc.get("volumes")
    if not isinstance(vols, list) or len(vols) != 1 or vols[0].get("name") != name + "-image":
        fail("%s: volumes: %r" % (path, vols))
    got = sorted((p["path"], p["protection"]) for p in vols[0]["paths"])
    want = sorted((bytes.fromhex(p).decode("utf-8"), k) for p, k in (x.split(":") for x in paths_hex))
    if got != want:
        fail("%s: paths %r, expected %r" % (path, got, want))
    if vols[0].get("read_only") is not True or not isinstance(doc["fspf"]["key"], str):
        fail("%s: read_only or key lost their types: %r" % (path, doc))


def cmd_dockerfile(path, name_hex, *paths_hex):
    """Every line is a comment or one of the five instructions fshield writes: no value starts a line.
    The comments give back the paths (JSON strings) and the build command (a shell word)."""
    fixed = {
        "ARG BASE=debian:bookworm-slim",
        "FROM ${BASE}",
        "COPY protected/ /fshield/protected/",
        "COPY fshield.fspf /fshield/fshield.fspf",
        "RUN mkdir -p /fshield/image",
    }
    lines = open(path, "rb").read().decode("utf-8").split("\n")
    if lines[-1] != "":
        fail("%s does not end with a newline" % path)
    seen, paths, tag = set(), [], None
    for l in lines[:-1]:
        if l.startswith("#"):
            if l.startswith("#   \""):
                s, _, kind = l[4:].rpartition(" (")
                paths.append((json.loads(s), kind.rstrip(")")))
            elif l.startswith("# Build in this directory: docker build -t "):
                words = shlex.split(l[len("# Build in this directory: "):])
                if len(words) != 5 or words[:3] != ["docker", "build", "-t"] or words[4] != ".":
                    fail("%s: build command %r" % (path, words))
                tag = words[3]
            continue
        if l not in fixed:
            fail("%s: unexpected line %r" % (path, l))
        seen.add(l)
    if seen != fixed:
        fail("%s: instructions %r" % (path, seen))
    name = bytes.fromhex(name_hex).decode("utf-8")
    if tag != name + "-protected":
        fail("%s: build tag %r, expected %r" % (path, tag, name + "-protected"))
    want = sorted((bytes.fromhex(p).decode("utf-8"), k) for p, k in (x.split(":") for x in paths_hex))
    if sorted(paths) != want:
        fail("%s: paths %r, expected %r" % (path, sorted(paths), want))


if __name__ == "__main__":
    cmds = {"create": cmd_create, "inodes": cmd_inodes, "findings": cmd_findings,
            "field": cmd_field, "yaml": cmd_yaml, "dockerfile": cmd_dockerfile}
    cmds[sys.argv[1]](*sys.argv[2:])
