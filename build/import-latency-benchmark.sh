#!/usr/bin/env bash
# How soon BackupRelay sees a GES import end (docs/benchmarks.md, "The way back"): the local run (build/run-local.sh)
# with the app's default poll interval for GES and CSE jobs (Backup__OperationPollInterval, 3 s; the demo uses 1 s),
# then 10 more restores of the copy, each timed from the end of its import job (as the emulator recorded it) to the
# run's completion. Target: a median of at most 5 s.
#   bash build/import-latency-benchmark.sh [restores, default 10]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
Backup__OperationPollInterval="${Backup__OperationPollInterval:-00:00:03}" RUN_LOCAL_IMPORT_LATENCY="${1:-10}" exec bash build/run-local.sh
