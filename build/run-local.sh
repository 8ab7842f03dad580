#!/usr/bin/env bash
# The main job, locally: Azurite (storage), the Huawei Cloud emulator (GES + OBS, seeded with a demo
# graph) and BackupRelay's published Functions app (isolated worker) run by the project's local Functions
# host (src/BackupRelay.LocalHost, a dev/test tool); one scheduled backup fires at once and is followed from
# GES job to copied, verified files in Azurite; then the way back: that copy is restored into a second
# graph (Blob → the emulator's OBS → GES import); and the scheduled restore drill of the demo graph (its timer
# ticks each minute) restores the same copy into a third graph, reads it back from OBS and imports it.
# Exits non-zero unless all three succeeded.
#   bash build/run-local.sh              the demo, then everything stops
#   bash build/run-local.sh --stay-up    the demo, then the stack stays up to explore (URLs, key and
#                                        curl calls printed) until Ctrl+C
# Environment (benchmarks): BACKUP_FILE_SIZES="1073741824" seeds the demo backup with these file sizes
# (bytes, comma-separated; default 48 MiB + 5 MiB + 1023 B); RUN_LOCAL_RESTORE=0 skips the webhook restore;
# RUN_LOCAL_TIMEOUT (seconds, default 300) bounds the backup, RUN_LOCAL_DRILL_WAIT (default 240) the drill, for
# large files; RUN_LOCAL_PEAK_RSS=1 prints each server's and the worker's peak resident memory at the end;
# RUN_LOCAL_IMPORT_LATENCY=N restores the copy N more times and prints how soon each import's end was seen.
set -euo pipefail
stay_up=0
case "${1:-}" in
  "") ;;
  --stay-up) stay_up=1 ;;
  *) echo "usage: bash build/run-local.sh [--stay-up]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

[ -d node_modules/azurite ] || npm ci --no-audit --no-fund --loglevel=error
echo "building (Release)..."
dotnet publish -c Release src/BackupRelay.Functions -o "$root/artifacts/functions" -v quiet -nologo | grep -E " error " || true
dotnet build -c Release src/BackupRelay.LocalHost -v quiet -nologo | grep -E " error " || true
dotnet build -c Release src/BackupRelay.DevTools -v quiet -nologo | grep -E " error " || true

work="$(mktemp -d)"
pids=()
cleanup() {
  if [ "${RUN_LOCAL_PEAK_RSS:-0}" = 1 ] && [ "${#pids[@]}" -ge 2 ]; then
    # Peak resident memory (VmHWM) of each server and of the worker the local host started, for the benchmarks.
    worker_pid="$(pgrep -f 'artifacts/functions/BackupRelay.Functions.dll' | head -n 1 || true)"
    for entry in "azurite:${pids[0]}" "emulator:${pids[1]}" "worker:$worker_pid"; do
      name="${entry%%:*}"; pid="${entry#*:}"
      [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && awk -v n="$name" '/^VmHWM/ { printf "Peak RSS %s: %d MB\n", n, $2 / 1024 }' "/proc/$pid/status"
    done
  fi
  # Said before the wait: the servers take a few seconds to stop, and their storage was in memory.
  echo "stopping the local Functions host, the emulator and Azurite (in memory: the demo's runs and copies go with them)..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"
  echo "stopped."
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
emu_port="$(free_port)"; blob_port="$(free_port)"; queue_port="$(free_port)"; table_port="$(free_port)"; host_port="$(free_port)"

project=0a1b2c3d4e5f40718293a4b5c6d7e8f9
graph=4c5f882d-a813-4d78-a8e3-6d3212ddd121
restored=7e1d3c52-0b6a-4f0e-9c1d-2a3b4c5d6e7f
drills=9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
cat > "$work/seed.json" <<JSON
{
  "projects": [{ "id": "$project", "name": "cn-north-4" }],
  "users": [{ "name": "backup-relay", "password": "emulator-password", "domain": "demo-domain" }],
  "keyPairs": [{ "accessKey": "EMULATORACCESSKEY001", "secretKey": "emulator-secret-key-0000000000000000000001" }],
  "graphs": [{ "id": "$graph", "name": "demo_graph", "projectId": "$project", "status": "200",
               "backupFileSizes": [ ${BACKUP_FILE_SIZES:-50331648, 5242897, 1023} ] },
             { "id": "$restored", "name": "demo_graph_restored", "projectId": "$project", "status": "200" },
             { "id": "$drills", "name": "demo_graph_drills", "projectId": "$project", "status": "200" }],
  "settings": { "jobPendingSeconds": 2, "jobRunningSeconds": 6 }
}
JSON

echo "starting Azurite on 127.0.0.1:$blob_port/$queue_port and the Huawei Cloud emulator on 127.0.0.1:$emu_port"
node node_modules/azurite/dist/src/azurite.js --silent --inMemoryPersistence --disableTelemetry \
  --blobHost 127.0.0.1 --blobPort "$blob_port" --queueHost 127.0.0.1 --queuePort "$queue_port" \
  --tableHost 127.0.0.1 --tablePort "$table_port" >"$work/azurite.log" 2>&1 &
pids+=($!)
dotnet src/BackupRelay.HuaweiCloud.Emulator/bin/Release/net10.0/BackupRelay.HuaweiCloud.Emulator.dll \
  --urls "http://127.0.0.1:$emu_port" --seed "$work/seed.json" >"$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  curl -s -o /dev/null "http://127.0.0.1:$emu_port/" && curl -s -o /dev/null "http://127.0.0.1:$blob_port/" && break
  sleep 0.2
done

key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue_port/devstoreaccount1"

# The host's settings go in a settings file (local.settings.json format), not on its command line, so
# no value is ever echoed by the shell. Settings you export yourself (e.g. Backup__Schedule, Copy__*)
# are read after the file and win over it.
cat > "$work/local.settings.json" <<JSON
{
  "Values": {
    "FUNCTIONS_WORKER_RUNTIME": "dotnet-isolated",
    "AzureWebJobsStorage": "$storage",
    "Destination": "$storage",
    "Destination__Container": "ges-backups",
    "HuaweiCloud__Region": "cn-north-4",
    "HuaweiCloud__ProjectId": "$project",
    "HuaweiCloud__Endpoints__Iam": "http://127.0.0.1:$emu_port",
    "HuaweiCloud__Endpoints__Ges": "http://127.0.0.1:$emu_port",
    "HuaweiCloud__Endpoints__Cse": "http://127.0.0.1:$emu_port",
    "HuaweiCloud__Auth__UserName": "backup-relay",
    "HuaweiCloud__Auth__Password": "emulator-password",
    "HuaweiCloud__Auth__DomainName": "demo-domain",
    "Backup__Schedule": "0 0 2 * * *",
    "Backup__Graphs__0__GraphId": "$graph",
    "Backup__Graphs__0__Drill__Schedule": "0 0 4 * * *",
    "Backup__Graphs__0__Drill__TargetGraphId": "$drills",
    "Backup__PollInitialDelay": "00:00:02",
    "Backup__PollMaxDelay": "00:00:10",
    "Backup__OperationPollInterval": "00:00:01",
    "Copy__SliceMaxBytes": "33554432",
    "Obs__Endpoint": "http://127.0.0.1:$emu_port/obs",
    "Obs__AccessKeyId": "EMULATORACCESSKEY001",
    "Obs__SecretAccessKey": "emulator-secret-key-0000000000000000000001",
    "Obs__Bucket": "ges-restore-bucket",
    "Http__HealthCacheDuration": "00:00:01"
  }
}
JSON
overridden="$(env | cut -d= -f1 | grep -E '^(AzureWebJobsStorage|Destination|HuaweiCloud__|Backup__|Copy__|Obs__|Http__)' | sort | tr '\n' ' ' || true)"
[ -n "$overridden" ] && echo "your exported settings go to the app over the demo's (the app checks them as it starts): $overridden"

# The local host's key for the function-level routes (the Functions host's keys in Azure).
host_key="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# The master key: admin-level routes (the poison replay) and everything else.
master_key="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
echo "starting BackupRelay (published worker on the local Functions host); the schedule fires once at start-up"
LOCALHOST_HOST_KEY="$host_key" LOCALHOST_MASTER_KEY="$master_key" dotnet src/BackupRelay.LocalHost/bin/Release/net10.0/BackupRelay.LocalHost.dll \
  --app "$root/artifacts/functions" --settings "$work/local.settings.json" --port "$host_port" --run-timers-on-startup \
  >"$work/backuprelay.log" 2>&1 &
host_pid=$!
pids+=("$host_pid")

dotnet src/BackupRelay.DevTools/bin/Release/net10.0/BackupRelay.DevTools.dll watch --storage "$storage" --container ges-backups --timeout "${RUN_LOCAL_TIMEOUT:-300}" &
watch_pid=$!
pids+=("$watch_pid")

# A host that dies (a bad setting, a crash) is reported at once, not after the watcher's timeout.
status=0
while kill -0 "$watch_pid" 2>/dev/null; do
  if ! kill -0 "$host_pid" 2>/dev/null; then
    host_status=0; wait "$host_pid" || host_status=$?
    kill "$watch_pid" 2>/dev/null || true
    echo; echo "BackupRelay exited with code $host_status before the backup finished:"
    # The worker's own report, once, without the host's log prefix.
    grep -E "cannot start|problem|fail|Unhandled" "$work/backuprelay.log" | sed -E 's/^(warn|fail|info): BackupRelay\.LocalHost\[[0-9]+\] worker: //' | awk '!seen[$0]++' \
      | head -n 20 || tail -n 20 "$work/backuprelay.log"
    exit 1
  fi
  sleep 0.3
done
wait "$watch_pid" || status=$?
if [ "$status" -eq 0 ]; then
  # What operators see: the graph's freshness, from the API.
  echo
  graphs="$(curl -sf -H "x-functions-key: $host_key" "http://127.0.0.1:$host_port/api/graphs")" || { echo "GET /api/graphs failed"; status=1; }
  [ "$status" -ne 0 ] || python3 - "$graphs" <<'PY'
import json, sys
for g in json.loads(sys.argv[1]):
    copy = g.get("lastVerifiedCopy")
    last = ("last verified copy %s (%d files, %d bytes)" % (copy["completedAt"], copy["files"], copy["bytes"])) if copy else "no verified copy yet"
    print("Graph %s: %s (%s; threshold %s; next backup %s)" % (g["graphId"], g["state"], last, g["threshold"], g["nextOccurrence"]))
PY
fi
if [ "$status" -eq 0 ] && [ "${RUN_LOCAL_RESTORE:-1}" != "0" ]; then
  # The way back: the copy just made, restored into a second graph and imported by GES.
  echo
  dotnet src/BackupRelay.DevTools/bin/Release/net10.0/BackupRelay.DevTools.dll restore --storage "$storage" \
    --api "http://127.0.0.1:$host_port" --key "$host_key" --graph "$restored" --obs "http://127.0.0.1:$emu_port/obs" --timeout 300 || status=$?
fi
if [ "$status" -eq 0 ]; then
  # The restore drill: the drill timer ticks each minute and takes the newest verified copy (waits for it to pass).
  echo
  echo "waiting for the restore drill of graph $graph (the drill timer ticks each minute)..."
  drill_status=1
  for _ in $(seq 1 "${RUN_LOCAL_DRILL_WAIT:-240}"); do
    graphs="$(curl -sf -H "x-functions-key: $host_key" "http://127.0.0.1:$host_port/api/graphs/$graph")" || { sleep 1; continue; }
    # Exit code 0: proven (the line printed), 2: unproven (the reason printed), 1: not yet.
    drill_status=0
    line="$(python3 - "$graphs" <<'PY'
import json, sys
g = json.loads(sys.argv[1]); r = g["restore"]; p = r.get("lastProvenRestore")
if p:
    print("Graph %s: last proven restore %s (backup %s, copy age %s, took %s; drill run %s into %s)" % (
        g["graphId"], p["at"], p["backupId"], p["copyAge"], p["duration"], p["runId"], r["targetGraphId"]))
    e = r.get("estimate")
    if e:
        print("Graph %s: restoring its newest copy (backup %s, %.1f MiB) is estimated at %s: moving it %s at %.1f MiB/s, then the import %s" % (
            g["graphId"], e["backupId"], e["bytes"] / 1048576, e["total"], e["transfer"], e["bytesPerSecond"] / 1048576, e["import"]))
elif r["state"] == "RestoreUnproven":
    print("Graph %s: RestoreUnproven: %s" % (g["graphId"], r["reason"])); sys.exit(2)
else:
    sys.exit(1)
PY
)" || drill_status=$?
    [ "$drill_status" = "1" ] || { echo "$line"; break; }
    sleep 1
  done
  if [ "$drill_status" = "0" ]; then
    # Where the drill's time went, from its run record: upload with read-back, then the GES import.
    drill_run="$(curl -sf -H "x-functions-key: $host_key" "http://127.0.0.1:$host_port/api/runs?graphId=$graph&limit=10")"
    python3 - "$drill_run" <<'PY'
import json, sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00"))
run = next(r for r in json.loads(sys.argv[1]) if r["kind"] == "restore-drill")
files = run["files"]; size = sum(f["size"] or 0 for f in files)
start = min(t(f["startedAt"]) for f in files if f.get("startedAt")); uploaded = max(t(f["completedAt"]) for f in files)
up = (uploaded - start).total_seconds(); total = (t(run["completedAt"]) - t(run["createdAt"])).total_seconds()
print("Drill %s: %d files, %.1f MiB; %.1f s in all; upload + read-back %.1f s (%.1f MiB/s); import %.1f s" % (
    run["id"], len(files), size / 1048576, total, up, size / 1048576 / up if up > 0 else 0, (t(run["completedAt"]) - uploaded).total_seconds()))
PY
  fi
  if [ "$drill_status" != "0" ]; then
    [ "$drill_status" = "1" ] && echo "the restore drill did not pass within 4 minutes"
    status=1
  fi
fi
if [ "$status" -eq 0 ] && [ "${RUN_LOCAL_IMPORT_LATENCY:-0}" -gt 0 ]; then
  # How soon the end of a GES import is seen: N more restores of the copy into the second graph, one after another;
  # for each, the run's completion (the app saw the import end) minus the end of its import job as the emulator
  # recorded it (GES job times have whole seconds: the figure is at most 1 s too high, never too low).
  echo
  for i in $(seq 1 "$RUN_LOCAL_IMPORT_LATENCY"); do
    dotnet src/BackupRelay.DevTools/bin/Release/net10.0/BackupRelay.DevTools.dll restore --storage "$storage" \
      --api "http://127.0.0.1:$host_port" --key "$host_key" --graph "$restored" --obs "http://127.0.0.1:$emu_port/obs" --timeout 300 \
      --idempotency-key "import-latency-$i" >/dev/null \
      || { echo "restore $i of $RUN_LOCAL_IMPORT_LATENCY failed"; status=1; break; }
  done
  if [ "$status" -eq 0 ]; then
    runs="$(curl -sf -H "x-functions-key: $host_key" "http://127.0.0.1:$host_port/api/runs?graphId=$restored&limit=100")"
    state="$(curl -sf "http://127.0.0.1:$emu_port/_emulator/state")"
    python3 - "$runs" "$state" "$RUN_LOCAL_IMPORT_LATENCY" <<'PY'
import json, statistics, sys
from datetime import datetime, timezone
def t(s):
    d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)  # GES job times are UTC without an offset
jobs = {j["jobId"]: j for j in json.loads(sys.argv[2])["jobs"]}
runs = [r for r in json.loads(sys.argv[1]) if r["kind"] == "restore-from-copy" and r["status"].lower() == "succeeded" and r.get("jobId") in jobs]
runs = sorted(runs, key=lambda r: r["createdAt"])[-int(sys.argv[3]):]
seen = [(t(r["completedAt"]) - t(jobs[r["jobId"]]["endTime"])).total_seconds() for r in runs]
print("Import end seen after the GES job ended, over %d restores: median %.2f s, max %.2f s (each: %s)" % (
    len(seen), statistics.median(seen), max(seen), ", ".join("%.2f" % s for s in seen)))
PY
  fi
fi
if [ "$status" -ne 0 ]; then
  echo; echo "--- BackupRelay log (last 40 lines) ---"; tail -n 40 "$work/backuprelay.log"
fi
if [ "$status" -eq 0 ] && [ "$stay_up" -eq 1 ]; then
  cat <<TEXT

The stack stays up until Ctrl+C:
  API (local Functions host):  http://127.0.0.1:$host_port/api   (log: $work/backuprelay.log)
  Azurite:                     blob http://127.0.0.1:$blob_port/devstoreaccount1, queue http://127.0.0.1:$queue_port/devstoreaccount1
  Huawei Cloud emulator:       http://127.0.0.1:$emu_port   (GES, IAM, CSE; OBS under /obs)
  Graphs:                      $graph (demo_graph, backed up), $restored (demo_graph_restored), $drills (demo_graph_drills, drill target)

In another shell:
  export API=http://127.0.0.1:$host_port/api KEY=$host_key MASTER_KEY=$master_key
  curl -s "\$API/health"                                                     # anonymous
  curl -s -H "x-functions-key: \$KEY" "\$API/graphs"                           # freshness of every graph
  curl -s -X POST -H "x-functions-key: \$KEY" "\$API/graphs/$graph/backups"  # back up now: 202 + the run
  curl -s -H "x-functions-key: \$KEY" "\$API/runs?limit=5"                     # the newest runs
  curl -s -X POST -H "x-functions-key: \$MASTER_KEY" "\$API/queues/backup-copy/poison/replay"  # poison messages back (master key)
TEXT
  trap 'exit 0' INT TERM
  while kill -0 "$host_pid" 2>/dev/null; do sleep 1; done
  echo "BackupRelay stopped"; tail -n 20 "$work/backuprelay.log"
  exit 1
fi
exit "$status"
