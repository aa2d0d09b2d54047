#!/usr/bin/env python3
"""Renders bench/results/structured-<model>.json (from bench/structured_table.sh) as the markdown
table between the <!-- structured:<model> --> markers of docs/results.md.
Usage: render_structured.py RESULTS.json docs/results.md"""
import json, sys

from results_block import write_block

res = json.load(open(sys.argv[1]))
name, chunks, dense = res["model"], res["chunks"], res["dense"]
d_tg = dense["bench"]["tg_tps"]
rows = ["| method | sparsity | params (block linears removed) | file MiB | ppl | KLD vs original | top-1 agree | decode t/s | dense f16 t/s (paired) | speedup |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
def row(label, sp, r):
    e, b = r["eval"], r["bench"]
    params = r.get("prune", {}).get("params_after") or r.get("prune", {}).get("n_params")
    p = f"{params / 1e6:.1f}M" if params else "—"
    if "achieved" in r.get("prune", {}):  # block-linear share removed; a method may land off the asked one
        p += f" (−{100 * r['prune']['achieved']:.1f}%)"
    # speedup against the dense runs just before and after this model's (A-B-A), else the first one
    d = r.get("dense_tg_tps_paired", d_tg)
    return (f"| {label} | {sp} | {p} | {r['file_mib']:.1f} | {e['ppl']:.2f} | {e['kld_mean']:.4f} | "
            f"{100 * e['top1_agree']:.2f}% | {b['tg_tps']:.1f} | {d:.1f} | {b['tg_tps'] / d:.2f}× |")
rows.append(row("dense f16", "0", dense))
order = ["heads", "neurons", "flap", "block-influence", "layers"]
def key(r):
    m, sp = r["config"].rsplit("-", 1)
    return (float(sp), order.index(m) if m in order else len(order), m)
for r in sorted(res["runs"], key=key):
    m, sp = r["config"].rsplit("-", 1)
    if "error" in r:
        rows.append(f"| {m} | {sp} | failed: {r['error'].replace('|', '/')} | | | | | | | |")
    else:
        rows.append(row(m, sp, r))
note = (f"\nOriginal model ppl {dense['eval']['ref_ppl']:.3f}; wikitext-2 test, ctx 512, first {chunks} windows; "
        f"decode: `slimlm bench -p 32 -n {res.get('gen', 64)} -r {res.get('reps', 2)}`, 2 threads, each pruned model timed "
        f"between two runs of the dense f16 model (speedup against their mean). No recovery training. Rerun: `{res['rerun']}`.")
write_block(sys.argv[2], f"structured:{name}", "\n".join(rows) + "\n" + note)
