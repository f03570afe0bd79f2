#!/usr/bin/env python3
"""The import graph of a crate's top-level modules, and its cycles.

    python3 .ci/module_graph.py [crates/tasktonic-core/src] [--why] [--dot] [--max=N]

A top-level module is a file `src/x.rs` or a directory `src/x/` (all its files count as
one). An edge x -> y means some file of x names `crate::y…`, or an item that `lib.rs`
re-exports from y (`crate::Ctx` is `crate::ctx::Ctx`). Prints each module's imports,
then every strongly connected component of more than one module (an import cycle), the
largest first; `--why` names what each import uses, `--dot` prints Graphviz instead. Exits 1 if a cycle has more than
`--max` modules (default: no limit).
"""

import os
import re
import sys


def modules(src):
    mods = {}
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if entry in ("lib.rs", "main.rs"):
            continue
        if entry.endswith(".rs"):
            mods[entry[:-3]] = [path]
        elif os.path.isdir(path):
            files = []
            for root, _, names in os.walk(path):
                files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
            mods[entry] = sorted(files)
    return mods


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("//")
    )


def reexports(lib):
    """Item name -> the module `lib.rs` re-exports it from (`pub use crate::m::{A, B}`)."""
    items = {}
    text = strip_comments(open(lib).read())
    for m in re.finditer(r"pub use crate::(\w+)::(\{[^}]*\}|\w+)", text):
        module, names = m.group(1), m.group(2)
        for name in re.findall(r"\w+", names):
            items.setdefault(name, module)
    return items


def paths_in_use_group(group):
    """Top-level names in `{a, b::c, d::{e, f}}`."""
    names, depth, current = [], 0, ""
    for ch in group[1:-1]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.append(current)
            current = ""
            continue
        if depth == 0 or ch not in "{}":
            current += ch if depth == 0 else ""
    names.append(current)
    return [n.strip().split("::")[0].strip() for n in names if n.strip()]


def imports(files, mods, items, why=None):
    found = set()
    for path in files:
        text = strip_comments(open(path).read())
        for m in re.finditer(r"crate::(\{(?:[^{}]|\{[^{}]*\})*\}|\w+(?:::\w+)?)", text):
            target = m.group(1)
            names = paths_in_use_group(target) if target.startswith("{") else [target]
            for name in names:
                head = name.split("::")[0]
                module = head if head in mods else items.get(head)
                if module:
                    found.add(module)
                    if why is not None:
                        why.setdefault(module, set()).add(name)
    return found


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else "crates/tasktonic-core/src"
    limit = None
    for a in sys.argv[1:]:
        if a.startswith("--max="):
            limit = int(a.split("=", 1)[1])
    mods = modules(src)
    items = reexports(os.path.join(src, "lib.rs"))
    whys = {m: {} for m in mods}
    graph = {m: imports(files, mods, items, whys[m]) - {m} for m, files in mods.items()}
    cycles = sorted((c for c in sccs(graph) if len(c) > 1), key=len, reverse=True)
    if "--dot" in sys.argv:
        print("digraph modules {")
        for m in sorted(graph):
            for t in sorted(graph[m]):
                print(f'  "{m}" -> "{t}";')
        print("}")
    else:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m])) or '(nothing)'}")
            if "--why" in sys.argv:
                for t in sorted(graph[m]):
                    print(f"    {t}: {' '.join(sorted(whys[m][t]))}")
        print()
        print(f"{len(graph)} modules; import cycles: {len(cycles)}")
        for c in cycles:
            print(f"  {len(c)}: {' '.join(c)}")
    if limit is not None and cycles and len(cycles[0]) > limit:
        print(f"a cycle of {len(cycles[0])} modules (at most {limit})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
