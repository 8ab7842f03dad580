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
source build/bench-source.sh
bench_start
dotnet tool install --tool-path "$work/tools" dotnet-trace >/dev/null
bench_emulator "$work" "$size"
bin="$root/src/BackupRelay.DevTools/bin/Release/net10.0"
read -r _ link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup")
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
