#!/usr/bin/env python3
"""Renders bench/results/smollm2-cpu.json as a markdown table between the
<!-- bench:smollm2 --> markers of docs/results.md. Usage: render.py RESULTS.json docs/results.md"""
import json, sys

from results_block import write_block

res = json.load(open(sys.argv[1]))
rows = ["| weights | size MiB | slimlm pp512 t/s | slimlm tg128 t/s | peak RSS MiB | llama.cpp pp512 | llama.cpp tg128 | pp ratio | tg ratio |",
        "|---|---|---|---|---|---|---|---|---|"]
for r in res["runs"]:
    s, l = r["slimlm"], r["llama_cpp"]
    lpp = ltg = None
    if l:
        for e in l:
            if e.get("n_prompt", 0) > 0 and e.get("n_gen", 0) == 0: lpp = e["avg_ts"]
            if e.get("n_gen", 0) > 0 and e.get("n_prompt", 0) == 0: ltg = e["avg_ts"]
    f = lambda v: f"{v:.1f}" if v is not None else "–"
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "–"
    rows.append(f"| {r['type']} | {s['weights_mb']:.0f} | {s['pp_tps']:.1f} | {s['tg_tps']:.1f} | {s['peak_rss_mb']:.0f} | "
                f"{f(lpp)} | {f(ltg)} | {ratio(s['pp_tps'], lpp)} | {ratio(s['tg_tps'], ltg)} |")
table = "\n".join(rows)
note = f"\n\n{res['host']}, {res['threads']} threads; ratio = slimlm / llama.cpp (higher is better for slimlm)."
write_block(sys.argv[2], "bench:smollm2", table + note)
