#!/usr/bin/env bash
# Restore drill durations on the local stack (Azurite, the Huawei Cloud emulator, the published worker on
# the local Functions host): the demo graph's drill (48 MiB + 5 MiB + 1023 B) and a 1 GiB copy's, each
# Blob → OBS (every object read back and hashed) → GES import, from the drill run's record. The emulator's
# import job takes 8 s (pending 2 s, running 6 s) and the poll backs off from 2 s: the import figure is
# mostly that, not work. Prints one line per drill, and the peak resident memory of Azurite, the emulator and the
# worker over the whole local run (backup, copy and drill).
#   bash build/drill-benchmark.sh
#   RUN_LOCAL_TIMEOUT=1200 RUN_LOCAL_DRILL_WAIT=900 DRILL_BENCH_SIZES="8589934592" bash build/drill-benchmark.sh   (8 GiB; Azurite
#   keeps the copy in memory: about 10 GB)
set -euo pipefail
# The app's default slices (no byte limit; run-local.sh's demo cuts files in 32 MiB slices to show slicing).
export Copy__SliceMaxBytes=0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
for sizes in ${DRILL_BENCH_SIZES:-"50331648, 5242897, 1023" "1073741824"}; do
  out="$(BACKUP_FILE_SIZES="$sizes" RUN_LOCAL_RESTORE=0 RUN_LOCAL_PEAK_RSS=1 bash build/run-local.sh 2>&1)" || { echo "$out" | tail -n 40; exit 1; }
  echo "$out" | grep -E "^(Drill |Peak RSS)" | sed "s/^/[$sizes] /"
done
