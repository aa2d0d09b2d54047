#!/usr/bin/env python3
"""Renders bench/results/quant-<model>.json (from bench/quant_table.sh) as the markdown table
between the <!-- quant:<model> --> markers of docs/results.md.
Usage: render_quant.py RESULTS.json docs/results.md"""
import json, sys

from results_block import write_block

res = json.load(open(sys.argv[1]))
name, chunks = res["model"], res["chunks"]
rows = ["| method | type | bpw (linears) | file MiB | ppl | KLD vs original | top-1 agree | quantize s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
types = ["u4g128", "u3g128", "u2g64", "nf4g64", "nf3g64", "s4g128", "u4g64", "lut4", "lut3", "w8a8"]
methods = ["rtn", "gptq", "gptq-act", "awq", "awq+gptq", "kmeans", "rtn-outl", "gptq-outl", "w8a8", "smoothquant"]
def key(r):  # rows grouped by type, methods in a fixed order (a merged file keeps its layout)
    method, typ = r["config"].split(":", 1)
    return (types.index(typ) if typ in types else len(types), typ, methods.index(method) if method in methods else len(methods), method)
for r in sorted(res["runs"], key=key):
    method, typ = r["config"].split(":", 1)
    if "error" in r:
        rows.append(f"| {method} | {typ} | failed: {r['error'].replace('|', '/')} | | | | | | |")
        continue
    q, e = r["quantize"], r["eval"]
    rows.append(f"| {method} | {q['type']} | {q['bpw_linear']:.3f} | {q['file_mb']:.1f} | {e['ppl']:.3f} | "
                f"{e['kld_mean']:.4f} | {100 * e['top1_agree']:.2f}% | {r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} |")
ok = [r for r in res["runs"] if "error" not in r]
ref = ok[0]["eval"]["ref_ppl"] if ok else float("nan")
note = (f"\nOriginal model ppl {ref:.3f}. wikitext-2 test, ctx 512, first {chunks} windows "
        f"({ok[0]['eval']['n_scored'] if ok else 0} scored tokens); calibration: "
        f"{max([r['quantize'].get('calib_tokens', 0) for r in ok] or [0])} tokens of brown.txt. "
        f"Rerun: `{res.get('rerun', 'bench/quant_table.sh ' + name)}`.")
write_block(sys.argv[2], f"quant:{name}", "\n".join(rows) + "\n" + note)
