"""The command line both structure checkers share: `[ROOT]` checks a tree (default: the
repository), `--self-test` runs the checker's own fixtures. Exit 1 when anything is reported."""
import os


def run(argv, name, check, self_test, self_test_ok, summary):
    """check(root) and self_test() return lists of messages; summary(errors) is the last line."""
    if argv[1:2] == ["--self-test"]:
        failures = self_test()
        for f in failures:
            print("self-test:", f)
        print(f"{name} self-test:", "FAILED" if failures else self_test_ok)
        return 1 if failures else 0
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    errors = check(os.path.abspath(root))
    for e in errors:
        print(e)
    print(f"{name}: {summary(errors)}")
    return 1 if errors else 0
