#!/usr/bin/env bash
# Fan-out benchmark: one schedule tick over N graphs (default 500), three instances (each the local
# Functions host process running the published worker) over one Azurite and one Huawei Cloud emulator
# whose gateway throttles GES at 60 requests/s per project; one instance's worker killed with SIGKILL a
# third of the way in, another instance (host and worker) killed half way, storage down 20 s two thirds
# in (the scenario of FanOutTests, with more graphs). Prints: wall time from the tick to every run
# verified, GES calls per run, the share of GES calls throttled (429), and peak RSS per instance (host +
# worker).
#   bash build/fanout-benchmark.sh [graphs, default 500]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
graphs="${1:-500}"
source build/worker-bench.sh
prepare_worker

figures="$(mktemp)"
rm -f "${TMPDIR:-/tmp}/backuprelay-fanout.txt"
status=0
FANOUT_GRAPHS="$graphs" FANOUT_OUTAGE_SECONDS=20 dotnet test tests/BackupRelay.Tests.Integration -c Release --no-build \
  --filter "FullyQualifiedName~FanOutTests" --logger "console;verbosity=normal" >"$figures" 2>&1 || status=$?
grep -E "Test Run (Successful|Failed)|^\s+Failed |Error Message" -A2 "$figures" | head -n 20 || true
echo
cat "${TMPDIR:-/tmp}/backuprelay-fanout.txt" 2>/dev/null || echo "no figures: the run failed before the end"
rm -f "$figures"
exit "$status"
