#!/usr/bin/env bash
# What do the default run's bits depend on? Runs the default benchmark (the `make run` command)
# once as the reference and once per variation, and compares every metric bit for bit with
# `bench reproduce`. Results go to benchmarks/determinism_results.md (see README, "Reproducibility").
# Takes about seven default runs (~12 minutes on an idle 2-core machine).
# The default data is 16 kHz PCM WAV, the cnn's own rate, so the decoded-audio cache (on by default)
# skips it: reading such a file costs no more than reading the cache. The last pair makes every file
# go through the cache: the cnn at 32 kHz resamples each clip, once with the cache off, once on
# (2 epochs each), and the two are compared with each other.
set -uo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=benchmarks/determinism_results.md

# ONLY="name ..." runs just those variations, e.g. the cache pair on a busy machine:
#   ONLY="resampled_cache_off resampled_cache_on" RESAMPLED_EPOCHS=1 bash benchmarks/determinism.sh
ONLY=${ONLY:-}
run() {  # run NAME ENV... -- ARGS...: one default run into $work/NAME
  local name=$1; shift
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
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
run audio_cache_off OMP_NUM_THREADS=2 BENCH_CACHE="$cache" -- --set train.audio_cache=false
run data_elsewhere OMP_NUM_THREADS=2 BENCH_CACHE="$work/other-cache" --   # dataset generated in another directory, cold caches
run again OMP_NUM_THREADS=2 BENCH_CACHE="$cache" --
resampled=(--set cnn.sample_rate=32000 --epochs "${RESAMPLED_EPOCHS:-2}")
# The cached run fills the audio cache where it has no entry for these 32 kHz clips yet (the first
# time) and reads it afterwards; the uncached run writes no audio entries.
run resampled_cache_off OMP_NUM_THREADS=2 BENCH_CACHE="$cache" -- "${resampled[@]}" --set train.audio_cache=false
run resampled_cache_on OMP_NUM_THREADS=2 BENCH_CACHE="$cache" -- "${resampled[@]}" --set train.audio_cache=true

{
  echo "# Determinism of the default run"
  echo
  echo "Produced by \`${ONLY:+ONLY=\"$ONLY\" }${RESAMPLED_EPOCHS:+RESAMPLED_EPOCHS=$RESAMPLED_EPOCHS }bash benchmarks/determinism.sh\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),"
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')."
  echo "Each row is one \`bench run\` (the default benchmark) compared metric by metric with the reference run."
  echo
  echo "| variation | identical to the reference? | t2a mAP@10 |"
  echo "|---|---|---|"
  for name in reference again threads1 workers0 audio_cache_off data_elsewhere resampled_cache_off resampled_cache_on; do
    file=$(ls "$work/$name/results"/*.json 2>/dev/null | head -1)
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    if [ -z "$file" ]; then echo "| $name | run failed | |"; continue; fi
    map=$(.venv/bin/python -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['metrics']['t2a']['mAP@10']*100:.2f}\")" "$file")
    against=reference
    [ "$name" = resampled_cache_on ] && against=resampled_cache_off
    if [ "$name" = reference ] || [ "$name" = resampled_cache_off ]; then verdict="(reference)";
    elif "$BENCH" reproduce "$file" --against "$(ls "$work/$against/results"/*.json | head -1)" > "$work/$name.cmp" 2>&1; then verdict="yes, every metric";
    else verdict="no: $(grep -c ': committed' "$work/$name.cmp") metric(s) differ"; fi
    [ "$against" != reference ] && verdict="$verdict (vs $against)"
    echo "| $name | $verdict | $map |"
  done
  echo
  echo "Variations: reference and again = 2 torch threads, 2 DataLoader workers, warm caches;"
  echo "threads1 = OMP_NUM_THREADS=1; workers0 = --num-workers 0; audio_cache_off = --set train.audio_cache=false"
  echo "(the cache is on by default but skips these 16 kHz WAV files, which need no resampling);"
  echo "resampled_cache_off / resampled_cache_on = --set cnn.sample_rate=32000 --epochs ${RESAMPLED_EPOCHS:-2} with the cache off / on"
  echo "(every clip resampled from 16 to 32 kHz; the cache is filled by the first run that needs an entry and read afterwards);"
  echo "data_elsewhere = BENCH_CACHE in a new directory (the synthetic dataset is generated again there and every cache is cold)."
} > "$out"
cat "$out"
