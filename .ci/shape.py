#!/usr/bin/env python3
"""The shape of src/: no file over 600 lines, no function over 80, no import circle, and none
of the imports the design rules out (NEVER).

Usage: python3 .ci/shape.py [--report]   (exit 1 when a rule is broken; --report never fails)

Test modules (`#[cfg(test)] mod`) count toward a file's lines only. Functions are found by their `fn` keyword and measured from it to their closing brace, with
strings, characters and comments skipped. Imports are `crate::`, `super::` and `self::` paths,
resolved to the file that defines the module they name; a file that names another through them
depends on it, and files that depend on each other in a loop form a circle.
"""

import re
import sys
from pathlib import Path

MAX_FILE_LINES = 600
MAX_FN_LINES = 80
# Parts that must never import another: (importer, imported), as top-level modules.
NEVER = [("sampler", "journal"), ("store", "report"), ("objective", "train")]
SRC = Path(__file__).resolve().parent.parent / "src"


def code_only(text):
    """`text` with strings, characters and comments blanked out (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r(#*)"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_tests(code):
    """`code` without its `#[cfg(test)] mod NAME { ... }` blocks (lines kept blank)."""
    out = code
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                break
            j += 1
        out = out[: m.start()] + re.sub(r"[^\n]", " ", out[m.start() : j + 1]) + out[j + 1 :]
    return out


def long_functions(path, code):
    found = []
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", code):
        i = m.end()
        # The body's opening brace, unless the signature ends first (a trait's declaration).
        depth = 0
        while i < len(code) and not (code[i] == "{" and depth == 0):
            if code[i] in "(<[":
                depth += 1
            elif code[i] in ")>]":
                depth -= 1 if code[i] != ">" or code[i - 1] != "-" else 0
            elif code[i] == ";" and depth <= 0:
                break
            i += 1
        if i >= len(code) or code[i] != "{":
            continue
        depth, j = 0, i
        while j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                break
            j += 1
        start = code.count("\n", 0, m.start()) + 1
        end = code.count("\n", 0, j) + 1
        if end - start + 1 > MAX_FN_LINES:
            found.append((path, start, m.group(1), end - start + 1))
    return found


def module_of(path):
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def imports(path, code, modules):
    here = module_of(path)
    # A mod.rs is its folder's module; `super` of a file is its folder.
    parent = here[:-1]
    names = set()
    for m in re.finditer(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)", code):
        root = {"crate": (), "super": parent, "self": here}[m.group(1)]
        rest = m.group(2)
        if rest == "::{":
            # `use crate::{a, b::c}`: each first name of the group.
            body = code[m.end() : code.find("}", m.end())]
            heads = [re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", p) for p in body.split(",")]
            paths = [(h.group(1),) for h in heads if h]
        else:
            paths = [tuple(rest.strip(":").split("::"))]
        for p in paths:
            target = root + p
            while target and target not in modules:
                target = target[:-1]
            if target and target != here and not here[: len(target)] == target:
                names.add(target)
    return names


def circles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(f): f for f in files}
    broken = []
    graph = {}
    # Files of test modules (`#[cfg(test)] mod NAME;`) count only toward the file sizes.
    test_files = set()
    for f in files:
        for name in re.findall(r"#\[cfg\(test\)\]\s*mod\s+(\w+)\s*;", f.read_text()):
            folder = f.parent if f.name == "mod.rs" else f.with_suffix("")
            test_files.add(folder / f"{name}.rs")
    for f in files:
        text = f.read_text()
        lines = text.count("\n")
        if lines > MAX_FILE_LINES:
            broken.append(f"{f.relative_to(SRC.parent)}: {lines} lines (at most {MAX_FILE_LINES})")
        if f in test_files:
            continue
        code = without_tests(code_only(text))
        for path, line, name, length in long_functions(f, code):
            broken.append(f"{path.relative_to(SRC.parent)}:{line}: fn {name} is {length} lines (at most {MAX_FN_LINES})")
        graph[module_of(f)] = imports(f, code, modules)
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if module and (module[0], target[0]) in NEVER:
                broken.append(f"{modules[module].relative_to(SRC.parent)} imports {'::'.join(target)}: {module[0]}/ must not import {target[0]}")
    for group in circles(graph):
        named = ", ".join(str(modules[m].relative_to(SRC.parent)) for m in group)
        broken.append(f"import circle: {named}")
    for line in broken:
        print(line)
    print(f"shape: {len(files)} files, {len(broken)} broken rules")
    return 0 if not broken or "--report" in sys.argv else 1


if __name__ == "__main__":
    sys.exit(main())
