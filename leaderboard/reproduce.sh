#!/usr/bin/env bash
# Re-run the committed results that are cheap to produce (today: the default benchmark, about two
# minutes on 2 CPU cores) with the current code, and replace the committed files they supersede.
# Run it from a clean checkout after a change to bench/ or plugins/ that alters the numbers, then
# commit leaderboard/results and the regenerated leaderboard/README.md. Expensive results (the
# loss comparison) are re-run with leaderboard/experiment.sh or pinned in leaderboard/pinned.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.venv/bin/bench}
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "reproduce.sh: the working tree has uncommitted changes; commit them first, so that the results record a clean tree" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BENCH" run --results-dir "$tmp/results" --runs-dir "$tmp/runs" --no-leaderboard   # = make run
"$BENCH" reproduce "$tmp/results" --against leaderboard/results --replace
"$BENCH" leaderboard
