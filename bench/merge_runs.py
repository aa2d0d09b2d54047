"""Merging a table script's new runs into its existing raw JSON (MERGE=1): the other configs of the
earlier file are kept (a few extra rows need not rerun a whole table); every run carries the command
that produced it and the file's "rerun" lists each distinct command once."""
import json, os


def merge(out, runs, rerun):
    for r in runs:
        r.setdefault("rerun", rerun)
    if not os.environ.get("MERGE") or not os.path.exists(out):
        return runs, rerun
    old = json.load(open(out))
    for r in runs:  # rerunning this command later must merge too
        if not r["rerun"].startswith("MERGE=1 "):
            r["rerun"] = "MERGE=1 " + r["rerun"]
    mine = {r["config"] for r in runs}
    kept = [dict(r, rerun=r.get("rerun", old.get("rerun", ""))) for r in old.get("runs", []) if r["config"] not in mine]
    runs = kept + runs
    return runs, "; ".join(dict.fromkeys(r["rerun"] for r in runs if r["rerun"]))
