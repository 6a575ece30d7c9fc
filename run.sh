#!/usr/bin/env bash
# README command (1): install what is missing, build everything, run the
# benchmarks: the rxe doorbell engine's figures (bench/rxe-doorbell), then
# the main job, the doorbell table (bench/run = bench/doorbell), which
# takes the engine's scale figures into its report. Arguments go to
# bench/run.
set -euo pipefail
top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/install-prereqs"
cmake -S "$top" -B "$top/build" -GNinja >/dev/null
cmake --build "$top/build"
"$top/bench/rxe-doorbell"
"$top/bench/run" "$@"
