#!/usr/bin/env python3
"""The layout of fshield's sources, checked from the code itself.

Each product folder sits on one layer; a file may use (include, or call into) its own folder and folders
on lower layers only. Two graphs are read: the #include "..." lines of every source and header, and the
symbols each compiled object defines and uses (so a call between two files counts even when no header
names it). Either graph failing one of these fails the test:
  1. no arrow runs up a layer, or across to a sibling folder on the same layer;
  2. no circle between files (a .c and its .h count as one file).
Usage: layout.py SOURCE_ROOT BUILD_DIR
"""
import os
import re
import subprocess
import sys

# Lowest first. Folders on one line are siblings and may not use each other.
LAYERS = [
    ["meta/common"],
    ["crypto"],
    ["meta"],
    ["meta/cas", "meta/fspf"],
    ["meta/anchor"],
    ["fs/volume"],
    ["fs/fuse"],
    ["tools"],
]
LAYER = {d: i for i, ds in enumerate(LAYERS) for d in ds}


def folder(path):
    return os.path.dirname(path)


def module(path):
    return os.path.splitext(path)[0]


def arrow_error(src, dst, how):
    a, b = folder(src), folder(dst)
    if a == b:
        return None
    if a not in LAYER or b not in LAYER:
        return f"{src} {how} {dst}: a folder outside the layer list"
    if LAYER[b] > LAYER[a]:
        return f"{src} {how} {dst}: an arrow up from {a} to {b}"
    if LAYER[b] == LAYER[a]:
        return f"{src} {how} {dst}: an arrow across between sibling folders {a} and {b}"
    return None


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]
    nodes = set(edges) | {d for ds in edges.values() for d in ds}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = n[0]; n[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop(); on.discard(x); comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = n[0]; n[0] += 1; stack.append(w); on.add(w)
                work.append((w, iter(sorted(edges.get(w, ())))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def sources(root):
    for d in sorted(LAYER):
        p = os.path.join(root, d)
        for f in sorted(os.listdir(p)):
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def include_graph(root):
    edges, errors = {}, []
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for src in sources(root):
        with open(os.path.join(root, src), encoding="utf-8") as fh:
            for line in fh:
                m = inc.match(line)
                if not m or m.group(1).endswith(".def"):
                    continue
                dst = m.group(1)
                e = arrow_error(src, dst, "includes")
                if e:
                    errors.append(e)
                if module(src) != module(dst):
                    edges.setdefault(module(src), set()).add(module(dst))
    return edges, errors


def nm(obj, *flags):
    r = subprocess.run(["nm", "-P", *flags, obj], capture_output=True, text=True, check=True)
    return [l.split()[0] for l in r.stdout.splitlines() if l.strip()]


def call_graph(root, build):
    defined, used = {}, {}
    for src in sources(root):
        if not src.endswith(".c"):
            continue
        obj = os.path.join(build, src[:-2] + ".o")
        if not os.path.exists(obj):
            continue  # not part of this build (tools/solo.c is linked per program)
        for s in nm(obj, "-g", "--defined-only"):
            defined.setdefault(s, src)
        used[src] = nm(obj, "-u")
    edges, errors = {}, []
    for src, syms in used.items():
        for s in syms:
            dst = defined.get(s)
            if not dst or module(dst) == module(src):
                continue
            e = arrow_error(src, dst, f"calls ({s}) into")
            if e:
                errors.append(e)
            edges.setdefault(module(src), set()).add(module(dst))
    return edges, errors


def main():
    root, build = sys.argv[1], sys.argv[2]
    bad = 0
    for name, (edges, errors) in (("include", include_graph(root)), ("call", call_graph(root, build))):
        for e in sorted(set(errors)):
            print(f"layout: {e}")
            bad += 1
        for c in cycles(edges):
            print(f"layout: {name} circle: {' -> '.join(c)}")
            bad += 1
        print(f"layout: {name} graph: {sum(len(v) for v in edges.values())} arrows between files")
    if bad:
        print(f"layout: {bad} problem(s)")
        return 1
    print("layout: no circle, no arrow up or across")
    return 0


if __name__ == "__main__":
    sys.exit(main())
