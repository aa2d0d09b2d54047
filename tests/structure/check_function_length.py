#!/usr/bin/env python3
"""No function in src/ or tools/ longer than 80 lines.

A function's length is counted from the line of its opening brace to the line of its closing
brace. Everything inside a body belongs to the function: lambdas, local classes and nested
blocks make it longer, they are not functions of their own. The scanner drops comments, string
and character literals (raw strings too) and preprocessor lines, then follows braces: a brace
opened at namespace, class or file scope after a parameter list is a function body; one after
`namespace`, `class`, `struct`, `union`, `enum` or `extern "C"` opens a scope; anything else
(an initializer) is data. Braces of a constructor's member initializers (`a_{x}`) are not the
body.

SIMD kernels whose length is their unrolling are exempt: a comment containing `SIMD-unrolled`
on the lines of the signature or in the comment block right above it.

    check_function_length.py [ROOT]      check src/ and tools/ under ROOT (default: the repository)
    check_function_length.py --self-test check fixtures with known lengths (exit 0 when all match)
"""
import os
import re
import sys
import tempfile

import structure_main

LIMIT = 80
MARKER = "SIMD-unrolled"
SCANNED = ["src", "tools"]
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc")
SCOPE_RE = re.compile(r'^(?:template\s*<.*>\s*)?(?:namespace\b|class\b|struct\b|union\b|enum\b|extern\s*"C")')
CONTROL_RE = re.compile(r"^(?:if|for|while|switch|do|else|try|catch|return)\b")
QUALIFIER_RE = re.compile(r"\)\s*(?:const|volatile|noexcept(?:\s*\([^)]*\))?|override|final|mutable|&|&&|\s)*"
                          r"(?:->\s*[\w:<>,\s*&]+)?$")


def blank_code(text):
    """text with comments, literals and preprocessor lines replaced by spaces (newlines kept), and
    the comment text of each line (for the exemption marker)."""
    out, comments = [], {}
    i, n, line = 0, len(text), 1
    at_line_start = True

    def note(s, ln):
        comments[ln] = comments.get(ln, "") + s

    while i < n:
        c = text[i]
        if at_line_start and c == "#":  # preprocessor line, with backslash continuations
            j = i
            while j < n and text[j] != "\n":
                j += 2 if text[j] == "\\" and j + 1 < n else 1
            chunk = text[i:j]
            out.append(re.sub(r"[^\n]", " ", chunk))
            line += chunk.count("\n")
            i = j
            continue
        if c in " \t":
            out.append(c)
            i += 1
            continue
        at_line_start = False
        if c == "\n":
            out.append(c)
            line += 1
            at_line_start = True
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            note(text[i:j], line)
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            chunk = text[i:j]
            for k, part in enumerate(chunk.split("\n")):
                note(part, line + k)
            out.append(re.sub(r"[^\n]", " ", chunk))
            line += chunk.count("\n")
            i = j
        elif c == "R" and text.startswith('"', i + 1) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            chunk = text[i:j]
            out.append(re.sub(r"[^\n]", " ", chunk))
            line += chunk.count("\n")
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out), comments


def functions(text):
    """(first_line, last_line, head_first_line, head_last_line) of every function body."""
    code, _ = blank_code(text)
    found = []
    stack = []          # kinds of the open braces: scope, function, data, init
    head, head_line = "", None
    line = 1
    fn_start = None     # (brace line, head line) of the function being scanned
    for ch in code:
        if ch == "\n":
            line += 1
            if head.strip():
                head += " "
            continue
        in_function = any(k == "function" for k in stack)
        if ch == "{":
            if in_function:
                stack.append("block")
                continue
            h = " ".join(head.split())
            if stack and stack[-1] == "init":
                kind = "init"
            elif SCOPE_RE.match(h) and "(" not in h.split("{")[0].split("=")[0] or h.startswith('extern "C"'):
                kind = "scope"
            elif "(" in h and not h.startswith("=") and "=" not in h.split("(")[0] and not CONTROL_RE.match(h):
                ctor_init = re.search(r"\)\s*:(?!:)", h) is not None
                if ctor_init and re.search(r"[\w>]\s*$", h):
                    kind = "init"   # a member initializer's braces, the body comes later
                elif QUALIFIER_RE.search(h) or (ctor_init and re.search(r"[)}]\s*$", h)):
                    kind = "function"
                else:
                    kind = "data"
            else:
                kind = "data"
            stack.append(kind)
            if kind == "function":
                fn_start = (line, head_line)
            if kind != "init":
                head, head_line = "", None
            else:
                head += "{"
            continue
        if ch == "}":
            kind = stack.pop() if stack else "scope"
            if kind == "function":
                found.append((fn_start[0], line, fn_start[1] or fn_start[0]))
                fn_start = None
            if kind == "init":
                head += "}"
            elif not in_function or kind == "function":
                head, head_line = "", None
            continue
        if in_function:
            continue
        if ch == ";":
            head, head_line = "", None
            continue
        if not ch.isspace() and head_line is None:
            head_line = line
        head += ch
    return found


def exempt(lines, comments, head_line, brace_line):
    probe = list(range(head_line, brace_line + 1))
    k = head_line - 1
    while k >= 1 and lines[k - 1].strip().startswith(("//", "/*", "*")):
        probe.append(k)
        k -= 1
    return any(MARKER in comments.get(ln, "") for ln in probe)


def scan(path, rel):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = text.split("\n")
    _, comments = blank_code(text)
    out = []
    for first, last, head_line in functions(text):
        n = last - first + 1
        if n > LIMIT and not exempt(lines, comments, head_line, first):
            sig = " ".join(lines[head_line - 1].split())[:100]
            out.append((rel, head_line, n, sig))
    return out


def check(root):
    errors = []
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(SOURCE_EXT):
                    path = os.path.join(dirpath, name)
                    errors += scan(path, os.path.relpath(path, root))
    return [f"{rel}:{ln}: function is {n} lines (limit {LIMIT}): {sig}" for rel, ln, n, sig in errors]


def body(n, indent="  "):
    return "".join(f"{indent}x += {i};\n" for i in range(n))


def self_test():
    """Fixtures whose function lengths are known; returns the mismatches."""
    long_lambda = "void outer() {\n  int x = 0;\n  auto f = [&](int a) {\n" + body(80, "    ") + "  };\n  f(1);\n}\n"
    cases = {
        # name: (source, expected [(head line, length)] of over-long functions)
        "short functions pass": ("int f(int a) {\n" + body(78) + "}\n", []),
        "81 lines fail": ("namespace a {\nint f(int a) {\n" + body(79) + "}\n}  // namespace a\n", [(2, 81)]),
        "a lambda counts toward its function": (long_lambda, [(1, 86)]),
        "multi-line signature, member function in a class, ctor init braces": (
            "struct S {\n  int a_;\n  S(int a)\n      : a_{a} {\n" + body(79, "    ") + "  }\n};\n", [(3, 81)]),
        "comments, strings and raw strings do not confuse the braces": (
            'const char* s = "{";\nvoid g() {\n  const char* r = R"x({ })x";  // }\n  /* { */\n'
            + body(80) + "}\n", [(2, 84)]),
        "the marker exempts a SIMD body": (
            "// SIMD-unrolled: eight lanes written out\nvoid k() {\n" + body(100) + "}\n", []),
        "data initializers are not functions": ("const int t[] = {\n" + "  1,\n" * 100 + "};\n", []),
        "control blocks inside a function belong to it": (
            "void h() {\n  if (x) {\n" + body(40) + "  }\n  for (;;) {\n" + body(40) + "  }\n}\n", [(1, 86)]),
    }
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (src, want)) in enumerate(cases.items()):
            path = os.path.join(tmp, f"case{i}.cpp")
            with open(path, "w", encoding="utf-8") as f:
                f.write(src)
            got = [(ln, n) for _, ln, n, _ in scan(path, f"case{i}.cpp")]
            if got != want:
                failures.append(f"{name}: expected {want}, got {got}")
        os.makedirs(os.path.join(tmp, "tree", "src", "core"))
        with open(os.path.join(tmp, "tree", "src", "core", "long.cpp"), "w", encoding="utf-8") as f:
            f.write(long_lambda)
        errs = check(os.path.join(tmp, "tree"))
        if len(errs) != 1 or not errs[0].startswith("src/core/long.cpp:1:"):
            failures.append(f"tree with one long function: expected one report at src/core/long.cpp:1, got {errs}")
    return failures


def summary(errors):
    if errors:
        return f"{len(errors)} function(s) over {LIMIT} lines"
    return f"no function in {' or '.join(SCANNED)} over {LIMIT} lines"


if __name__ == "__main__":
    sys.exit(structure_main.run(sys.argv, "function length", check, self_test,
                                "the checker measures every fixture right", summary))
