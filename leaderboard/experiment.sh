#!/usr/bin/env bash
# The loss comparison in leaderboard/README.md: every loss with 3 seeds on the default synthetic
# benchmark with the default settings except 4 epochs per stage instead of 8, which keeps the 21
# trainings of the comparison within about half an hour on 2 CPU cores. Rerunning skips what
# already has a result.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/bench}
COMMON=(--epochs 4 --seed 0,1,2 --no-leaderboard --results-dir leaderboard/results)

"$BENCH" run --loss ntxent "${COMMON[@]}"
"$BENCH" run --loss distill "${COMMON[@]}"      # M = 1: stage 1 is the ntxent run of the same seed
teachers=$(.venv/bin/python - <<'PY'
import json, pathlib
runs = sorted((json.loads(p.read_text()) for p in pathlib.Path("leaderboard/results").glob("*.json")),
              key=lambda r: r["run_id"])
ids = {r["seed"]: r["run_id"] for r in runs if r.get("kind", "train") == "train" and r["loss"]["name"] == "ntxent"
       and r["dataset"]["name"] == "synthetic" and r["training"]["epochs"] == 4 and not r["loss"].get("set")}
print(",".join(ids[s] for s in (0, 1, 2)))
PY
)
"$BENCH" run --loss distill --teachers "$teachers" "${COMMON[@]}"   # M = 3: the three ntxent seeds
for negatives in random full semihard hard; do
  "$BENCH" run --loss triplet --set triplet.negatives=$negatives "${COMMON[@]}"
done
# Late fusion (CombSUM) of the three ntxent seeds.
IFS=, read -r t0 t1 t2 <<<"$teachers"
"$BENCH" fuse "$t0" "$t1" "$t2" --method combsum --no-leaderboard --results-dir leaderboard/results
"$BENCH" leaderboard
