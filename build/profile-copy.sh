#!/usr/bin/env bash
# Where a copy's time goes: one file from the emulator's OBS endpoint to a local directory through the
# copy engine (DevTools copy) under dotnet-trace's thread-time sampling, then the busy time (threads
# not waiting) attributed to the innermost managed frame — hashing, writes, fsyncs, native code.
#   bash build/profile-copy.sh [size-in-MiB, default 512]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
size=$((${1:-512} * 1024 * 1024))
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
dotnet tool install --tool-path "$work/tools" dotnet-trace >/dev/null
dotnet build -c Release src/BackupRelay.DevTools -v quiet -nologo 2>&1 | grep -E " error " || true

graph=4c5f882d-a813-4d78-a8e3-6d3212ddd121
backup=0b0b0b0b-1111-4222-8333-444444444444
cat > "$work/seed.json" <<JSON
{"projects":[{"id":"0a1b2c3d4e5f40718293a4b5c6d7e8f9","name":"cn-north-4"}],
 "users":[{"name":"backup-relay","password":"emulator-password","domain":"demo-domain"}],
 "graphs":[{"id":"$graph","name":"bench","projectId":"0a1b2c3d4e5f40718293a4b5c6d7e8f9","backups":[{"id":"$backup","fileSizes":[$size]}]}]}
JSON
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
dotnet src/BackupRelay.HuaweiCloud.Emulator/bin/Release/net10.0/BackupRelay.HuaweiCloud.Emulator.dll \
  --urls "http://127.0.0.1:$port" --seed "$work/seed.json" >"$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
bin="$root/src/BackupRelay.DevTools/bin/Release/net10.0"
read -r _ link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$port/" --graph "$graph" --backup "$backup")
mkdir -p "$work/out"
(cd "$work" && "$work/tools/dotnet-trace" collect --profile dotnet-sampled-thread-time --format Speedscope -o "$work/copy.nettrace" \
  -- dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --local "$work/out" --path bench.bin >"$work/trace.log" 2>&1)
python3 - "$work/copy.speedscope.json" <<'PY'
import collections, json, sys
d = json.load(open(sys.argv[1]))
frames = d["shared"]["frames"]
name = lambda f: frames[f]["name"]
# Frames where a thread waits (idle pool threads, socket event loop, timers): not busy time.
waits = ("WaitNative", "Wait(", "epoll", "EventLoop", "TimerThread", "GateThread", "Sleep", "WaitOne",
         "WaitForSignal", "LowLevelLifoSemaphore", "WaitCore", "Monitor.", "WaitForSocketEvents")
busy = collections.Counter(); total = 0.0
for profile in d["profiles"]:
    stack, last = [], None
    for e in profile["events"]:
        if stack and last is not None:
            managed = [f for f in stack if name(f) not in ("UNMANAGED_CODE_TIME", "CPU_TIME")]
            leaf = managed[-1] if managed else stack[-1]
            if not any(w in name(leaf) for w in waits):
                busy[leaf] += e["at"] - last; total += e["at"] - last
        if e["type"] == "O": stack.append(e["frame"])
        elif stack: stack.pop()
        last = e["at"]
print(f"busy thread time {total / 1000:.1f} s; by innermost managed frame:")
for f, t in busy.most_common(8):
    print(f"  {100 * t / total:5.1f}%  {name(f)[:120]}")
PY
