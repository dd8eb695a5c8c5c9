#!/usr/bin/env bash
# What do the default run's bits depend on? Runs the default benchmark (the `make run` command)
# once as the reference and once per variation, and compares every metric bit for bit with
# `bench reproduce`. Results go to benchmarks/determinism_results.md (see README, "Reproducibility").
# Takes about six default runs (~10 minutes on an idle 2-core machine).
set -uo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=benchmarks/determinism_results.md

run() {  # run NAME ENV... -- ARGS...: one default run into $work/NAME
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$BENCH" run --results-dir "$work/$name/results" --runs-dir "$work/$name/runs" \
    --no-leaderboard "$@" > "$work/$name.log" 2>&1 || { echo "$name failed: see $work/$name.log" >&2; tail -5 "$work/$name.log" >&2; }
}

cache=${BENCH_CACHE:-$HOME/.cache/bench}
run reference OMP_NUM_THREADS=2 BENCH_CACHE="$cache" --
run threads1 OMP_NUM_THREADS=1 BENCH_CACHE="$cache" --
run workers0 OMP_NUM_THREADS=2 BENCH_CACHE="$cache" -- --num-workers 0
run audio_cache OMP_NUM_THREADS=2 BENCH_CACHE="$cache" -- --set train.audio_cache=true
run data_elsewhere OMP_NUM_THREADS=2 BENCH_CACHE="$work/other-cache" --   # dataset generated in another directory, cold caches
run again OMP_NUM_THREADS=2 BENCH_CACHE="$cache" --

{
  echo "# Determinism of the default run"
  echo
  echo "Produced by \`bash benchmarks/determinism.sh\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),"
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')."
  echo "Each row is one \`bench run\` (the default benchmark) compared metric by metric with the reference run."
  echo
  echo "| variation | identical to the reference? | t2a mAP@10 |"
  echo "|---|---|---|"
  for name in reference again threads1 workers0 audio_cache data_elsewhere; do
    file=$(ls "$work/$name/results"/*.json 2>/dev/null | head -1)
    if [ -z "$file" ]; then echo "| $name | run failed | |"; continue; fi
    map=$(.venv/bin/python -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['metrics']['t2a']['mAP@10']*100:.2f}\")" "$file")
    if [ "$name" = reference ]; then verdict="(reference)";
    elif "$BENCH" reproduce "$file" --against "$(ls "$work/reference/results"/*.json | head -1)" > "$work/$name.cmp" 2>&1; then verdict="yes, every metric";
    else verdict="no: $(grep -c ': committed' "$work/$name.cmp") metric(s) differ"; fi
    echo "| $name | $verdict | $map |"
  done
  echo
  echo "Variations: reference and again = 2 torch threads, 2 DataLoader workers, warm caches;"
  echo "threads1 = OMP_NUM_THREADS=1; workers0 = --num-workers 0; audio_cache = --set train.audio_cache=true;"
  echo "data_elsewhere = BENCH_CACHE in a new directory (the synthetic dataset is generated again there and every cache is cold)."
} > "$out"
cat "$out"
