#!/usr/bin/env python3
"""Strict layering: a source file may include only its own floor or a lower one.

The floors, lowest first (docs/design.md, "Layers"):
    core -> io -> kernels -> model -> train -> quant -> prune -> eval -> pipeline -> api -> tools / examples
src/<floor>/ holds the library floors, include/ is the public header (the api floor), tools/
and examples/ sit on top. Every `#include "..."` in src/, include/, tools/ and examples/ is
resolved (next to the including file first, then under src/ and include/; `#include <...>` only
under src/ and include/) and its target's floor must not be above the including file's; two top
folders on one floor (tools, examples) may not include each other. A file of the tree in no floor
(a folder of src/ missing from the order) fails too. Includes that resolve to no file of the tree
are system or third-party headers (e.g. a peer's llama.h) and are not checked.

    check_layering.py [ROOT]      check the tree at ROOT (default: the repository)
    check_layering.py --self-test build small trees with a known violation and check that each
                                  is reported (exit 0 when the checker catches them all)
"""
import os
import re
import sys
import tempfile

import structure_main

FLOORS = ["core", "io", "kernels", "model", "train", "quant", "prune", "eval", "pipeline", "api", "tools"]
RANK = {name: i for i, name in enumerate(FLOORS)}
RANK["examples"] = RANK["tools"]
SCANNED = ["src", "include", "tools", "examples"]
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def floor_of(rel):
    """The floor of a repository-relative path, or None when it is in no floor."""
    parts = rel.replace(os.sep, "/").split("/")
    if parts[0] == "src":
        return parts[1] if len(parts) > 2 and parts[1] in RANK else None
    if parts[0] == "include":
        return "api"
    if parts[0] in ("tools", "examples"):
        return parts[0]
    return None


def resolve(root, rel_file, target, quoted):
    """Repository-relative path of an included file, or None when it is not in the tree."""
    bases = (os.path.dirname(rel_file), "src", "include") if quoted else ("src", "include")
    for base in bases:
        cand = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def sources(root):
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(SOURCE_EXT):
                    yield os.path.relpath(os.path.join(dirpath, name), root)


def check(root):
    """Returns the violations as 'file:line: message' strings."""
    errors = []
    for rel in sources(root):
        own = floor_of(rel)
        if own is None:
            errors.append(f"{rel}:1: file is in no floor (src/<floor>/ with floor one of {', '.join(FLOORS[:-2])})")
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                quoted, name = m.group(1) == '"', m.group(2)
                target = resolve(root, rel, name, quoted)
                where = f"{rel}:{lineno}"
                if target is None:
                    continue  # a system or third-party header
                dest = floor_of(target)
                if dest is None:
                    errors.append(f'{where}: #include "{name}" points into {target}, which is in no floor')
                elif RANK[dest] > RANK[own] or (RANK[dest] == RANK[own] and dest != own):
                    errors.append(f'{where}: #include "{name}" points up: {own} may not include {dest}')
    return errors


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def self_test():
    """Each fixture has one defect; a clean fixture must pass. Returns the failures."""
    clean = {
        "src/core/tensor.h": "#pragma once\n",
        "src/kernels/kernels.h": '#pragma once\n#include "core/tensor.h"\n',
        "src/model/model.h": '#pragma once\n#include "kernels/kernels.h"\n#include "core/tensor.h"\n',
        "src/io/tokenizer/bpe.cpp": '#include "io/tokenizer/bpe.h"\n#include "bpe.h"\n',
        "src/io/tokenizer/bpe.h": '#include "core/tensor.h"\n',
        "include/slimlm/slimlm.h": '#include "model/model.h"\n',
        "tools/cli/main.cpp": '#include "common.h"\n#include "slimlm/slimlm.h"\n#include "llama.h"\n',
        "tools/cli/common.h": "#pragma once\n",
    }
    defects = {
        "kernels includes model": ("src/kernels/ops.cpp", '#include "core/tensor.h"\n#include "model/model.h"\n',
                                   "src/kernels/ops.cpp:2", "points up"),
        "library includes the public header": ("src/core/x.cpp", '#include <vector>\n#include <slimlm/slimlm.h>\n',
                                               "src/core/x.cpp:2", "points up"),
        "examples include tools": ("examples/demo.cpp", '#include "slimlm/slimlm.h"\n#include "../tools/cli/common.h"\n',
                                   "examples/demo.cpp:2", "points up"),
        "unknown folder": ("src/extra/x.h", "#pragma once\n", "src/extra/x.h:1", "no floor"),
    }
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "clean")
        for rel, text in clean.items():
            write(base, rel, text)
        errs = check(base)
        if errs:
            failures.append(f"clean fixture reported violations: {errs}")
        for i, (name, (rel, text, where, what)) in enumerate(defects.items()):
            root = os.path.join(tmp, f"case{i}")
            for r, t in clean.items():
                write(root, r, t)
            write(root, rel, text)
            errs = check(root)
            if len(errs) != 1 or not errs[0].startswith(where + ":") or what not in errs[0]:
                failures.append(f"{name}: expected one violation at {where} ({what}), got {errs}")
    return failures


def summary(errors):
    if errors:
        return f"{len(errors)} violation(s); the order, lowest first: {' -> '.join(FLOORS)}"
    return "every include points to its own floor or lower"


if __name__ == "__main__":
    sys.exit(structure_main.run(sys.argv, "layering", check, self_test,
                                "the checker reports every planted violation", summary))
