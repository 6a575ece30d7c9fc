#!/usr/bin/env bash
# README command (1): install what is missing, build everything, run the
# main job (the rxe latency table, measured in the VM).
set -euo pipefail
top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/install-prereqs"
cmake -S "$top" -B "$top/build" -GNinja >/dev/null
cmake --build "$top/build"
"$top/bench/run" "$@"
"$top/bench/rxe-doorbell" "$@"
