#!/usr/bin/env python3
"""Renders bench/results/prune-<model>.json (from bench/prune_table.sh) as the markdown table
between the <!-- prune:<model> --> markers of docs/results.md.
Usage: render_prune.py RESULTS.json docs/results.md"""
import json, sys

from results_block import write_block

res = json.load(open(sys.argv[1]))
name, chunks = res["model"], res["chunks"]
rows = ["| method | sparsity | achieved | ppl | KLD vs dense | top-1 agree | file MiB | decode t/s | prune s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
methods = ["magnitude", "wanda", "ria", "sparsegpt"]
def key(r):  # rows by pattern (50%, 2:4, 4:8, then higher sparsities), then method, OWL/DSnoT after
    method, pat = r["config"].split(":", 1)
    base = method.split("-")[0]
    p = (1, int(pat.split(":")[1]), 0.0) if ":" in pat else (0 if float(pat) <= 0.5 else 2, 0, float(pat))
    return (p, methods.index(base) if base in methods else len(methods), method)
for r in sorted(res["runs"], key=key):
    method, pat = r["config"].split(":", 1)
    if "error" in r:
        rows.append(f"| {method} | {pat} | failed: {r['error'].replace('|', '/')} | | | | | | | |")
        continue
    p, e = r["prune"], r["eval"]
    size = f"{r['file_mib']:.1f}" if "file_mib" in r else "—"
    tg = f"{r['tg_tps']:.1f}" if "tg_tps" in r else "—"
    rows.append(f"| {method} | {pat} | {p['achieved_sparsity']:.3f} | {e['ppl']:.2f} | {e['kld_mean']:.4f} | "
                f"{100 * e['top1_agree']:.2f}% | {size} | {tg} | {r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} |")
ok = [r for r in res["runs"] if "error" not in r]
note = (f"\nDense model ppl {ok[0]['eval']['ref_ppl']:.3f}. " if ok else "\n") + \
       (f"wikitext-2 test, ctx 512, first {chunks} windows; decode t/s: `slimlm bench -p 32 -n 64`, 2 threads, "
        f"one repetition (rough). Rerun: `{res.get('rerun', 'bench/prune_table.sh ' + name)}`.")
write_block(sys.argv[2], f"prune:{name}", "\n".join(rows) + "\n" + note)
