#!/usr/bin/env bash
# A half-depth student of SmolLM2-135M-Instruct: 15 of its 30 blocks removed (`prune --method
# layers --sparsity 0.5`, contiguous blocks chosen by Gromov et al.'s angular distance, stored
# f16), then trained the same number of steps (STEPS x 256 tokens, full fine-tuning, AdamW,
# warm-up 10 and cosine, the same data/calibration.txt sequences) in each of these ways:
#   ce    next-token cross-entropy on the text (no teacher)
#   fkl   distillation: forward KL to the teacher's logits      rkl   reverse KL (MiniLLM)
#   jsd   generalized Jensen-Shannon (GKD's loss, β 0.5)       skl   skew KL (DistiLLM, α 0.5)
#   gkd   JSD on sequences the student writes itself half the time (--on-policy 0.5), when the
#         CLI has it
#   bb    black-box: the teacher writes BB_SAMPLES continuations of corpus passages, the student
#         trains on that text with cross-entropy only
# Each student is evaluated against the teacher on WikiText-2 test (ctx 512, CHUNKS windows).
#   STEPS=100 LR=2e-4 CHUNKS=4 THREADS=2 BB_SAMPLES=64 METHODS="ce fkl rkl jsd skl gkd bb"
# Rows are cached in WORK (default .cache/students-smollm2; FORCE=1 recomputes). Output:
# bench/results/students-smollm2.json (raw) and the table between <!-- students:smollm2 -->
# markers of docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-100}; lr=${LR:-2e-4}; chunks=${CHUNKS:-4}; threads=${THREADS:-2}; bb=${BB_SAMPLES:-64}
methods=${METHODS:-"ce fkl rkl jsd skl gkd bb"}
src=$(./scripts/fetch-models.sh smollm2)
[ -x build/slimlm ] || ./scripts/build.sh >/dev/null
wiki=../shared/data/wikitext-2-raw/wiki.test.raw
[ -f "$wiki" ] || { echo "students.sh: $wiki is missing (WikiText-2 test, the evaluation text)" >&2; exit 1; }
work=${WORK:-.cache/students-smollm2}
mkdir -p "$work" bench/results
export OMP_WAIT_POLICY=passive
ev() { ./build/slimlm eval "$1" -f "$wiki" --ctx 512 --chunks "$chunks" --ref "$src" -t "$threads" --json --no-progress > "$2"; }
if [ ! -s "$work/student.eval.json" ] || [ -n "${FORCE:-}" ]; then
  echo "== student: 15 of 30 blocks" >&2
  ./build/slimlm prune "$src" -o "$work/student.gguf" --method layers --sparsity 0.5 --type f16 --calib-samples 16 \
    -t "$threads" --json --no-progress > "$work/prune.json"
  ev "$work/student.gguf" "$work/student.eval.json"
fi
common=(--steps "$steps" --seq 256 --lr "$lr" --warmup 10 --heldout 0.02 -t "$threads" --json --no-progress --type f16)
for m in $methods; do
  r=$work/$m.run.json
  if [ -s "$r" ] && [ -z "${FORCE:-}" ]; then echo "== $m (cached: $r)" >&2; continue; fi
  case $m in
    ce) cmd=(train "$work/student.gguf") ;;
    fkl|rkl|jsd|skl) cmd=(distill "$work/student.gguf" --teacher "$src" --kd "$m") ;;
    gkd) if ! ./build/slimlm distill --help | grep -q -- --on-policy; then echo "== gkd: this build has no --on-policy; skipped" >&2; continue; fi
         cmd=(distill "$work/student.gguf" --teacher "$src" --kd jsd --on-policy 0.5) ;;
    bb) cmd=(distill "$work/student.gguf" --teacher "$src" --black-box --bb-samples "$bb" --bb-new-tokens 128) ;;
    *) echo "students.sh: unknown method $m" >&2; exit 1 ;;
  esac
  echo "== $m, $steps steps" >&2
  ./build/slimlm "${cmd[@]}" "${common[@]}" -o "$work/$m.gguf" > "$work/$m.train.json"
  ev "$work/$m.gguf" "$work/$m.eval.json"
  python3 -c 'import json, sys; t, e = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
keep = {k: t[k] for k in ("seconds", "tokens", "tokens_per_s", "heldout", "black_box") if k in t}
json.dump({"method": sys.argv[1], "train": keep, "eval": e}, open(sys.argv[4], "w"))' "$m" "$work/$m.train.json" "$work/$m.eval.json" "$r"
done
python3 - "$work" "$steps" "$lr" "$chunks" "$methods" "STEPS=$steps LR=$lr CHUNKS=$chunks BB_SAMPLES=$bb METHODS=\"$methods\" bench/students.sh" <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from results_block import write_block
work, steps, lr, chunks, methods, rerun = sys.argv[1:7]
name = {"ce": "cross-entropy on the text", "fkl": "KD, forward KL", "rkl": "KD, reverse KL (MiniLLM)",
        "jsd": "KD, generalized JSD (β 0.5)", "skl": "KD, skew KL (DistiLLM, α 0.5)",
        "gkd": "GKD: JSD, half the sequences written by the student", "bb": "black-box: CE on the teacher's text"}
student = json.load(open(os.path.join(work, "student.eval.json")))
rows = [json.load(open(os.path.join(work, m + ".run.json"))) for m in methods.split() if os.path.exists(os.path.join(work, m + ".run.json"))]
json.dump({"model": "SmolLM2-135M-Instruct", "student": "15 of 30 blocks (prune --method layers --sparsity 0.5), f16",
           "steps": int(steps), "lr": float(lr), "seq": 256, "chunks": int(chunks), "student_eval": student, "rows": rows,
           "rerun": rerun}, open("bench/results/students-smollm2.json", "w"), indent=1)
body = "| student | ppl | KLD vs teacher | top-1 agree | training time |\n|---|---:|---:|---:|---:|\n"
body += f"| no training | {student['ppl']:.2f} | {student['kld_mean']:.4f} | {100 * student['top1_agree']:.2f}% | - |\n"
for r in rows:
    e, t = r["eval"], r["train"]
    extra = f" (+ {t['black_box']['seconds']:.0f} s writing {t['black_box']['samples']} samples)" if "black_box" in t else ""
    body += (f"| {name[r['method']]} | {e['ppl']:.2f} | {e['kld_mean']:.4f} | {100 * e['top1_agree']:.2f}% | "
             f"{t['seconds']:.0f} s{extra} |\n")
body += (f"\nTeacher ppl {student['ref_ppl']:.2f}. {steps} steps of 256 tokens each, lr {lr}; WikiText-2 test, ctx 512, "
         f"first {chunks} windows. Rerun: `{rerun}`.")
write_block("docs/results.md", "students:smollm2", body)
print(body)
PY
