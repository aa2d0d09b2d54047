#!/usr/bin/env python3
"""Writes tests/data/blocks/<type>.bin: GGUF block-format fixtures for tests/core/test_dtype_blocks.cpp.

The expected values come from an independent implementation, the `gguf` Python package
(gguf.quants, numpy), never from slimlm. Requires: pip install gguf numpy, and the two models
that scripts/fetch-models.sh puts in models/. Deterministic (fixed seed): rerunning rewrites
identical files. Usage: scripts/make-block-fixtures.py [--out DIR] [--models DIR]

Per type, records of two kinds:
  dequant  block bytes -> f32     random-but-valid blocks (random bits for the codes, f16 scales
                                  uniform in (-0.1, 0.1)), edge blocks (zero/subnormal/huge/negative
                                  scales, all-zero and all-one codes) and real blocks from the models.
                                  Expected = gguf.quants.dequantize. Q8_K is absent from gguf-py
                                  (it is only ggml's intermediate for dot products): its expected
                                  values are computed here with numpy as float32(d) * float32(q).
  quant    f32 -> block bytes     for the types whose quantizer gguf-py implements (f32, f16 via
                                  numpy's float16 cast, bf16, q4_0, q4_1, q5_0, q5_1, q8_0): random
                                  normal data at several magnitudes, outliers, the largest magnitude
                                  with both signs, zero and constant blocks, exact ties, f16/bf16
                                  specials (subnormals, overflow, inf; NaN for bf16 only), and real
                                  weights from the models.

File format (little-endian):
  header   char magic[4] = "SLBK"; u32 version = 1; u32 ggml_type; u32 block (elements);
           u32 block_bytes; u32 n_records
  record   char tag[32] (ASCII, NUL-padded: where the data came from); u32 kind (0 dequant, 1 quant);
           u32 n_blocks; then
             kind 0: n_blocks*block_bytes block bytes, then n_blocks*block f32 expected values
             kind 1: n_blocks*block f32 inputs, then n_blocks*block_bytes expected block bytes
"""
import argparse
from importlib import metadata
import os
import struct
import sys

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize, quantize
except ImportError:
    sys.exit("make-block-fixtures: needs the gguf and numpy packages (pip install gguf numpy)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf", "gemma3": "gemma-3-270m-q4_k_m.gguf"}
DEQUANT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                 T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]
QUANT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]

# Where the f16 fields sit in each block (byte offsets), so random blocks get sane scales.
F16_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
              T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def sizes(t):
    return gguf.GGML_QUANT_SIZES[t]


def ref_dequant(t, raw):
    """Expected f32 values of raw block bytes (uint8 array), from the independent reference."""
    if t == T.Q8_K:  # not in gguf-py: d (f32), qs[256] (int8), bsums[16] (int16)
        b = raw.reshape(-1, 292)
        d = b[:, :4].copy().view(np.float32)
        return (d * b[:, 4:260].copy().view(np.int8).astype(np.float32)).ravel()
    return np.asarray(dequantize(raw, t), dtype=np.float32).ravel()


def ref_quant(t, x):
    x = np.asarray(x, dtype=np.float32)
    if t == T.F32:
        return x.view(np.uint8).copy()
    if t == T.F16:
        with np.errstate(over="ignore"):  # overflow to inf is part of the fixture
            return x.astype(np.float16).view(np.uint8).copy()
    return np.asarray(quantize(x.reshape(1, -1), t)).view(np.uint8).ravel().copy()


def random_blocks(t, rng, nb):
    block, nbytes = sizes(t)
    if t in (T.F32, T.F16, T.BF16):  # random bit patterns of every class (NaN only where exact)
        width = {T.F32: np.uint32, T.F16: np.uint16, T.BF16: np.uint16}[t]
        bits = rng.integers(0, np.iinfo(width).max + 1, nb * block, dtype=np.uint64).astype(width)
        if t == T.F16:  # numpy may quiet signalling NaNs when widening f16: leave NaNs out
            bits = bits[~(((bits & 0x7C00) == 0x7C00) & ((bits & 0x3FF) != 0))]
            bits = bits[: (len(bits) // block) * block]
        return bits.view(np.uint8).copy()
    raw = rng.integers(0, 256, (nb, nbytes), dtype=np.uint8)
    for off in F16_FIELDS.get(t, []):
        raw[:, off:off + 2] = rng.uniform(-0.1, 0.1, nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
    if t == T.Q8_K:
        raw[:, 0:4] = rng.uniform(-0.1, 0.1, nb).astype(np.float32).view(np.uint8).reshape(nb, 4)
    return raw.ravel()


def edge_blocks(t, rng):
    """Scales at the corners of f16 (zero, -0, subnormal, huge, negative) with extreme codes."""
    block, nbytes = sizes(t)
    if t == T.F32:
        v = np.array([0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38,
                      np.inf, -np.inf, np.nan, 65504.0, 65520.0, 1e-8, 3.0e-39], dtype=np.float32)
        return v.view(np.uint8).copy()
    if t == T.F16:
        h = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF,
                      0x7C00, 0xFC00, 0x3C00, 0x3555, 0x0200, 0x83FF, 0x3BFF, 0xC000], dtype=np.uint16)
        return h.view(np.uint8).copy()
    if t == T.BF16:
        h = np.array([0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x7F7F, 0xFF7F, 0x7F80,
                      0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x3F80, 0x3EAB, 0x4049, 0xC2F7], dtype=np.uint16)
        return h.view(np.uint8).copy()
    scales = [0x0000, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0xC500]  # 0, -0, subnormals, 65504, -5
    fill = [0x00, 0xFF, 0x00, 0xFF, 0x55, 0xAA]
    raw = np.empty((len(scales), nbytes), dtype=np.uint8)
    for i, (s, f) in enumerate(zip(scales, fill)):
        raw[i, :] = f
        for off in F16_FIELDS.get(t, []):
            raw[i, off:off + 2] = np.array([s], dtype=np.uint16).view(np.uint8)
        if t == T.Q8_K:
            raw[i, 0:4] = np.array([np.float32(np.uint16(s).view(np.float16))], dtype=np.float32).view(np.uint8)
    return raw.ravel()


def model_tensors(models_dir):
    readers = {}
    for key, name in MODELS.items():
        path = os.path.join(models_dir, name)
        if not os.path.exists(path):
            sys.exit(f"make-block-fixtures: missing {path} (run scripts/fetch-models.sh)")
        readers[key] = gguf.GGUFReader(path)
    return readers


def real_blocks(readers, t, rng, per_tensor=4, n_tensors=2):
    """(tag, raw bytes) of a few blocks from the first and a middle tensor of type t per model."""
    _, nbytes = sizes(t)
    out = []
    for key, r in readers.items():
        ts = [x for x in r.tensors if x.tensor_type == t]
        picks = [ts[i] for i in sorted({0, len(ts) // 2})][:n_tensors] if ts else []
        for x in picks:
            data = np.asarray(x.data).view(np.uint8).reshape(-1, nbytes)
            idx = np.concatenate([[0], rng.choice(len(data), per_tensor - 1, replace=False)])
            out.append((f"{key}:{x.name}", data[idx].ravel().copy()))
    return out


def quant_inputs(t, rng, readers):
    """(tag, f32 inputs) for a quantizer fixture."""
    block, _ = sizes(t)
    n = max(block, 32)
    out = []
    for scale in (1e-3, 0.02, 1.0, 300.0):
        out.append((f"normal*{scale:g}", (rng.standard_normal(4 * n) * scale).astype(np.float32)))
    spikes = rng.standard_normal(2 * n).astype(np.float32) * 0.01
    spikes[rng.choice(2 * n, 4, replace=False)] = [5.0, -7.0, 9.5, -0.5]
    out.append(("outliers", spikes))
    # Largest magnitude twice with opposite signs: the first one sets the sign of the scale.
    both = np.clip(rng.standard_normal(2 * n) * 0.5, -1.9, 1.9).astype(np.float32)
    both[[3, 20, n + 5, n + 9]] = [-2.0, 2.0, 2.0, -2.0]
    out.append(("amax-both-signs", both))
    out.append(("zeros", np.zeros(n, dtype=np.float32)))
    out.append(("constant", np.full(n, -0.75, dtype=np.float32)))
    out.append(("positive", rng.uniform(0.1, 2.0, n).astype(np.float32)))
    # Ties: values on exact half steps, so every rounding rule shows (amax sets the scale).
    ties = (np.arange(n, dtype=np.float32) % 17 - 8) + 0.5
    ties[0] = 127.0 if t == T.Q8_0 else (-8.0 if t == T.Q4_0 else (-16.0 if t == T.Q5_0 else ties[0]))
    out.append(("ties", ties.astype(np.float32)))
    if t in (T.F16, T.BF16, T.F32):
        special = np.array([6.1e-5, 6.0e-8, 3.0e-8, 2.9e-8, 1e-10, 65504.0, 65519.0, 65520.0, 1e6,
                            -np.inf, np.inf, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 1.0 + 2**-8, 1.0 + 3 * 2**-8,
                            1e-40, -1e-40, 3.4028235e38, -0.0, 2.0**-24 * 1.5, 2.0**-24 * 2.5,
                            2.0**-24 * 0.5, 2.0**-25 * 1.0001, 0.1, -0.1, 1.0, 3.14159265, 1e-30,
                            2.0**-14 * (1 - 2**-12), 2.0**-14 * (1 - 2**-11), 2.0**-14 * (1 - 2**-10), -2.5e-6],
                           dtype=np.float32)
        if t == T.BF16:
            nan_bits = np.array([0x7FC00000, 0x7F800001, 0xFFC12345, 0x7FFFFFFF], dtype=np.uint32)
            special = np.concatenate([special, nan_bits.view(np.float32)])
        out.append(("special", special))
    # Real weights: dequantized Q4_K/Q6_K rows of gemma and the f32 norm weights of SmolLM2.
    g = readers["gemma3"]
    w = next(x for x in g.tensors if x.tensor_type == T.Q4_K)
    row = np.asarray(dequantize(np.asarray(w.data)[3], T.Q4_K), dtype=np.float32).ravel()
    out.append((f"gemma3:{w.name}", row[: 8 * n]))
    s = readers["smollm2"]
    nw = next(x for x in s.tensors if x.tensor_type == T.F32 and x.name.endswith("norm.weight"))
    out.append((f"smollm2:{nw.name}", np.asarray(nw.data, dtype=np.float32).ravel()[: 4 * n]))
    return out


def record(tag, kind, n_blocks, payload):
    t = tag.encode("ascii")[:31]
    return t + b"\0" * (32 - len(t)) + struct.pack("<II", kind, n_blocks) + payload


def build(t, rng, readers):
    block, nbytes = sizes(t)
    recs = []

    def add_dequant(tag, raw):
        exp = ref_dequant(t, raw)
        nb = len(raw) // nbytes
        assert exp.dtype == np.float32 and len(exp) == nb * block, (t.name, tag)
        recs.append(record(tag, 0, nb, raw.tobytes() + exp.tobytes()))

    nb_random = {T.F32: 512, T.F16: 1024, T.BF16: 1024}.get(t, 6 if block == 256 else 16)
    add_dequant("random", random_blocks(t, rng, nb_random))
    add_dequant("edge", edge_blocks(t, rng))
    for tag, raw in real_blocks(readers, t, rng):
        add_dequant(tag, raw)
    if t in QUANT_TYPES:
        for tag, x in quant_inputs(t, rng, readers):
            x = x[: (len(x) // block) * block]
            q = ref_quant(t, x)
            assert len(q) == len(x) // block * nbytes, (t.name, tag)
            recs.append(record(tag, 1, len(x) // block, x.tobytes() + q.tobytes()))
    head = b"SLBK" + struct.pack("<IIIII", 1, int(t), block, nbytes, len(recs))
    return head + b"".join(recs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "blocks"))
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    args = ap.parse_args()
    readers = model_tensors(args.models)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for t in DEQUANT_TYPES:
        rng = np.random.default_rng(1234 + int(t))  # per type, so adding a type changes no other file
        data = build(t, rng, readers)
        path = os.path.join(args.out, f"{t.name.lower()}.bin")
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
        print(f"{path}: {len(data)} bytes")
    print(f"total {total} bytes (gguf {metadata.version('gguf')}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
