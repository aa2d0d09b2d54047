#!/usr/bin/env python3
# Weight-space error of quantized GGUFs against a common f32 GGUF: for each file, per storage type,
# Σ (w_q − w)² / Σ w² over the block weights of that type (dequantized with gguf-py, which is
# independent of slimlm). Compares quantizers (llama-quantize vs slimlm RTN) tensor for tensor.
#   PYTHONPATH=<llama.cpp>/gguf-py python bench/kquant_weight_error.py F32.gguf A.gguf B.gguf ... > out.json
import json, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

def tensors(path):
    r = GGUFReader(path)
    return {t.name: t for t in r.tensors if t.name.startswith("blk.")}

ref = {n: dequantize(t.data, t.tensor_type).astype(np.float64) for n, t in tensors(sys.argv[1]).items()}
out = {}
for path in sys.argv[2:]:
    per = {}
    for n, t in tensors(path).items():
        if n not in ref or ref[n].ndim < 2: continue
        q = dequantize(t.data, t.tensor_type).astype(np.float64)
        e = per.setdefault(t.tensor_type.name.lower(), [0.0, 0.0, 0])
        e[0] += float(((q - ref[n]) ** 2).sum()); e[1] += float((ref[n] ** 2).sum()); e[2] += ref[n].size
    out[path] = {k: {"rel_sse": v[0] / v[1], "elements": v[2]} for k, v in sorted(per.items())}
    print(path, {k: round(v["rel_sse"], 6) for k, v in out[path].items()}, file=sys.stderr)
json.dump(out, sys.stdout, indent=1)
