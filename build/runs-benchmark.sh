#!/usr/bin/env bash
# Run-history benchmark: RECORDS run records (default 100,000) over GRAPHS configured graphs (default 200)
# written into Azurite as the run store writes them (record, index entries, graph summaries), then the
# published worker behind the local Functions host answers GET /api/graphs and GET /api/runs?limit=50
# (five times each; median and max), a freshness pass is counted request by request, and the peer — reading
# every record, as every listing did before the run index — is timed in the same run.
#   bash build/runs-benchmark.sh [records, default 100000] [graphs, default 200]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
records="${1:-100000}"
graphs="${2:-200}"
source build/worker-bench.sh
prepare_worker

log="$(mktemp)"
rm -f "${TMPDIR:-/tmp}/backuprelay-runs-scale.txt"
status=0
RUNS_BENCH_RECORDS="$records" RUNS_BENCH_GRAPHS="$graphs" dotnet test tests/BackupRelay.Tests.Integration -c Release --no-build \
  --filter "FullyQualifiedName~RunHistoryScaleTests" >"$log" 2>&1 || status=$?
grep -E "^\s+Failed |Error Message|Stack Trace" -A8 "$log" | head -n 60 || true
cat "${TMPDIR:-/tmp}/backuprelay-runs-scale.txt" 2>/dev/null || echo "no figures: the run failed before the end"
rm -f "$log"
exit "$status"
