# Sourced by build/benchmark.sh, build/restore-benchmark.sh and build/profile-copy.sh: one large backup file served by
# the Huawei Cloud emulator, as they measure it, and what the benchmarks share.
#   bench_start              builds DevTools (Release), makes the run's work directory ($work) and, on exit, stops what
#                            the run started (the pids array) and removes $work
#   bench_tools PACKAGE...   installs the Debian packages whose tool is missing (time: /usr/bin/time; aria2: aria2c)
#   bench_azurite DIR        starts Azurite in memory on free ports (installed with npm ci if missing; pid appended to
#                            pids); sets blob_port and conn
#   measure NAME command...  runs the command under GNU time: wall s, user s, sys s, peak RSS KiB, and the emulator's CPU s
#                            meanwhile (when bench_emulator started one), one line into $work/summary
#   col RUN FIELD, mbps RUN [BYTES], cpu_per_gb RUN [BYTES], rss_mb RUN, ratio RUN PEER   read the summary ($size bytes)
#   bench_emulator DIR SIZE [SIZE2]  writes DIR/seed.json (one graph, one backup of a SIZE-byte file [and a SIZE2-byte one]), starts the
#                            emulator on a free port (pid appended to the caller's pids array), waits for it,
#                            and sets emu_port, graph and backup.

bench_start() {
  dotnet build -c Release src/BackupRelay.DevTools -v quiet -nologo 2>&1 | grep -E " error " || true
  work="$(mktemp -d)"
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

bench_emulator() {
  local dir="$1" bytes="$2"
  # Optional more files (e.g. the 8 GiB one): "fileSizes" lists them after the first.
  [ -n "${3:-}" ] && bytes="$bytes,$3"
  graph=4c5f882d-a813-4d78-a8e3-6d3212ddd121
  backup=0b0b0b0b-1111-4222-8333-444444444444
  cat > "$dir/seed.json" <<JSON
{"projects":[{"id":"0a1b2c3d4e5f40718293a4b5c6d7e8f9","name":"cn-north-4"}],
 "users":[{"name":"backup-relay","password":"emulator-password","domain":"demo-domain"}],
 "keyPairs":[{"accessKey":"EMULATORACCESSKEY001","secretKey":"emulator-secret-key-0000000000000000000001"}],
 "graphs":[{"id":"$graph","name":"bench","projectId":"0a1b2c3d4e5f40718293a4b5c6d7e8f9","backups":[{"id":"$backup","fileSizes":[$bytes]}]}]}
JSON
  emu_port="$(free_port)"
  dotnet src/BackupRelay.HuaweiCloud.Emulator/bin/Release/net10.0/BackupRelay.HuaweiCloud.Emulator.dll \
    --urls "http://127.0.0.1:$emu_port" --seed "$dir/seed.json" >"$dir/emulator.log" 2>&1 &
  emu_pid=$!
  pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$emu_port/" && return 0; sleep 0.2; done
  echo "the emulator did not start:"; cat "$dir/emulator.log"; return 1
}

bench_tools() {
  local need=() package
  for package in "$@"; do
    case "$package" in
      time) [ -x /usr/bin/time ] || need+=(time) ;;
      aria2) command -v aria2c >/dev/null || need+=(aria2) ;;
      *) command -v "$package" >/dev/null || need+=("$package") ;;
    esac
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (Debian packages)"
    apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

bench_azurite() {
  local dir="$1" queue_port table_port
  [ -d node_modules/azurite ] || npm ci --no-audit --no-fund --loglevel=error
  blob_port="$(free_port)"; queue_port="$(free_port)"; table_port="$(free_port)"
  node node_modules/azurite/dist/src/azurite.js --silent --inMemoryPersistence --disableTelemetry \
    --blobHost 127.0.0.1 --blobPort "$blob_port" --queueHost 127.0.0.1 --queuePort "$queue_port" \
    --tableHost 127.0.0.1 --tablePort "$table_port" >"$dir/azurite.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$blob_port/" && break
    sleep 0.2
  done
  local key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1"
}

# The CPU seconds (user + system) the emulator has used so far: what serving a run cost the test double, beside the tool.
emu_cpu() { [ -n "${emu_pid:-}" ] && awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$emu_pid/stat" || echo 0; }

measure() {
  local name="$1" before; shift
  before="$(emu_cpu)"
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || { echo "$name failed:"; cat "$work/$name.out" "$work/$name.err"; exit 1; }
  echo "$name $(cat "$work/$name.time") $(awk -v a="$before" -v b="$(emu_cpu)" 'BEGIN { printf "%.2f", b - a }')" >> "$work/summary"
}

col() { awk -v r="$1" -v f="$2" '$1==r {print $f}' "$work/summary"; }
mbps() { awk -v w="$(col "$1" 2)" -v b="${2:-$size}" 'BEGIN { printf "%.1f", b/1e6/w }'; }
cpu_per_gb() { awk -v u="$(col "$1" 3)" -v s="$(col "$1" 4)" -v b="${2:-$size}" 'BEGIN { printf "%.2f", (u+s)/(b/1e9) }'; }
rss_mb() { awk -v r="$(col "$1" 5)" 'BEGIN { printf "%.0f", r/1024 }'; }
emu_cpu_per_gb() { awk -v e="$(col "$1" 6)" -v b="${2:-$size}" 'BEGIN { printf "%.2f", e/(b/1e9) }'; }
ratio() { awk -v a="$(col "$2" 2)" -v b="$(col "$1" 2)" 'BEGIN { printf "%.2f", a/b }'; }   # ratio RUN PEER: PEER's wall / RUN's wall
