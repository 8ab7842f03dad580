#!/usr/bin/env bash
# Copy benchmark (docs/benchmarks.md, "Long-haul copies"). One large file served by the Huawei Cloud emulator's OBS
# endpoint, every tool in its own process under GNU time (wall, CPU, peak RSS), all in one run so the ratios hold
# on a noisy machine:
#  1. unshaped: curl -o /dev/null (the source's limit), BackupRelay and aria2c -x 16 into a local directory,
#     BackupRelay and rclone into Azurite; the floors of a verified durable copy measured beside them: MD5 +
#     SHA-256 of the same bytes from memory (and with the multipart ETag's part MD5s), and dd conv=fdatasync of
#     the same size (making that many bytes durable on this disk);
#  2. a grid of WAN profiles (per-connection rate x time to first byte, set on the emulator): BackupRelay at its
#     default (16 connections, growing to 32 while more pay) and at 8, beside aria2c -x 16 -s 16 and -x 8 -s 8, into a local directory, and
#     BackupRelay into Azurite;
#  3. one 8 GiB copy (peak RSS and CPU must not grow with the file) and 24 copies of 256 MiB at once in one
#     process (the isolated worker runs batchSize + newBatchThreshold messages at once).
#   bash build/benchmark.sh [size-in-MiB, default 1024]
#   RATES="4 16 32" (MB/s per connection) TTFBS="50 150 300" (ms) change the grid; GRID=0 skips it, CPU_PROFILE=0 the
#   CPU-bound profile (2b), BIG_MIB=0 the 8 GiB copy, MANY=0 the 24 copies.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
size_mib="${1:-1024}"
size=$((size_mib * 1024 * 1024))
rates="${RATES:-4 16 32}"
ttfbs="${TTFBS:-50 150 300}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

source build/bench-source.sh
bench_tools rclone time curl aria2
bench_start

big_mib="${BIG_MIB:-8192}"
big=$((big_mib * 1024 * 1024))
many=24
many_bytes=$((256 * 1024 * 1024))
# Files: [0] the benchmark file, [1] the 8 GiB one (or 1 byte), [2..25] the 256 MiB ones.
extra="$([ "$big" -gt 0 ] && echo "$big" || echo 1)"
for _ in $(seq 1 $many); do extra="$extra,$many_bytes"; done
bench_emulator "$work" "$size" "$extra"
bench_azurite "$work"
bin=src/BackupRelay.DevTools/bin/Release/net10.0

read -r file link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup")
read -r want_md5 want_sha < <(dotnet "$bin/BackupRelay.DevTools.dll" hashes --backup "$backup" --file "$file" --size "$size")
# The emulator computes a large file's multipart ETag on its first request: not inside anyone's measurement.
curl -s -o /dev/null -I "$link"
# rclone 1.60 reaches an emulator on any port through an account SAS URL.
sas="$(dotnet "$bin/BackupRelay.DevTools.dll" sas)"
rclone_azure=":azureblob,sas_url='http://127.0.0.1:$blob_port/devstoreaccount1?$sas':"

# verified RUN...: each BackupRelay run printed a complete copy with the expected length and hashes
verified() {
  local run outcome length md5 sha
  for run in "$@"; do
    read -r outcome length md5 sha _ < "$work/$run.out"
    # A file whose multipart ETag proved it has no whole-file MD5 ("-", Copy__WholeFileMd5=WhenNeeded): its SHA-256 must match.
    [ "$outcome" = Completed ] && [ "$length" = "$size" ] && { [ "$md5" = "$want_md5" ] || [ "$md5" = - ]; } && [ "$sha" = "$want_sha" ] \
      || { echo "$run did not produce a verified copy: $(cat "$work/$run.out")"; exit 1; }
  done
}

# br NAME DEST [args]: BackupRelay's copy engine; DEST is "local" or "azurite"
br() {
  local name="$1" dest="$2"; shift 2
  if [ "$dest" = local ]; then
    mkdir -p "$work/d-$name"
    measure "$name" dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --local "$work/d-$name" --path bench.bin "$@"
    rm -rf "$work/d-$name"
  else
    measure "$name" dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --blob "$conn" --container "c-${name//[^a-z0-9]/}" --path bench.bin "$@"
  fi
  verified "$name"
}

# aria NAME CONNECTIONS: aria2c -x N -s N into a local directory
aria() {
  mkdir -p "$work/d-$1"
  measure "$1" aria2c --quiet=true -x "$2" -s "$2" -k 1M --file-allocation=none -d "$work/d-$1" -o bench.bin "$link"
  rm -rf "$work/d-$1"
}


shape() {
  local shaped
  shaped="$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["obsBytesPerSecondPerConnection"]=int(sys.argv[2]); s["obsTimeToFirstByteMs"]=int(sys.argv[3]); print(json.dumps(s))' "$settings" "$1" "$2")"
  curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' -d "$shaped" "http://127.0.0.1:$emu_port/_emulator/settings"
}
settings="$(curl -s "http://127.0.0.1:$emu_port/_emulator/settings")"

echo "Copy benchmark: ${size_mib} MiB from the emulator's OBS endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"

# 1. Unshaped, and the floors.
measure curl curl -s -o /dev/null "$link"
measure hash-floor dotnet "$bin/BackupRelay.DevTools.dll" hashfloor --size-mib "$size_mib"
measure durable-write dd if=/dev/zero of="$work/dd.bin" bs=1M count="$size_mib" conv=fdatasync
rm -f "$work/dd.bin"
br backuprelay-local local
aria aria2c-x16-local 16
br backuprelay-azurite azurite
rclone mkdir "${rclone_azure}c-rclone" 2>/dev/null || true
measure rclone-azurite rclone copyurl "$link" "${rclone_azure}c-rclone/bench.bin"
read -r floor floor_parts _ < "$work/hash-floor.out"
durable="$(cpu_per_gb durable-write)"
br_cpu="$(cpu_per_gb backuprelay-local)"
echo
printf "%-22s %10s %12s %12s\n" run "MB/s" "CPU s/GB" "peak RSS MB"
for run in curl backuprelay-local aria2c-x16-local backuprelay-azurite rclone-azurite durable-write; do
  printf "%-22s %10s %12s %12s\n" "$run" "$(mbps "$run")" "$(cpu_per_gb "$run")" "$(rss_mb "$run")"
done
printf "%-22s %10s %12s   (MD5 + SHA-256 from memory; %s with a whole-file MD5 beside the part MD5s, as Copy__WholeFileMd5=Always computes)\n" hash-floor "" "$floor" "$floor_parts"
awk -v br="$br_cpu" -v f="$floor" -v fp="$floor_parts" -v d="$durable" -v c="$(col curl 2)" -v w="$(col backuprelay-local 2)" 'BEGIN {
  printf "\nBackupRelay -> local dir: %.0f%% of curl (target >= 50%%)\n", 100*c/w
  printf "CPU: %.2f s/GB = x%.2f the hash floor (target <= x1.5; this source, whose multipart ETag proves the copy, needs SHA-256 + the part MD5s: the same two passes); x%.2f (the floor + making the bytes durable, dd)\n", br, br/f, br/(f+d)
}'
echo "BackupRelay -> Azurite x$(ratio backuprelay-azurite rclone-azurite) of rclone -> Azurite; Azurite's bound here: $(mbps backuprelay-azurite) MB/s unshaped"

# 2. The grid.
if [ "${GRID:-1}" != 0 ]; then
  echo
  echo "WAN profiles (${size_mib} MiB; MB/s, and ratios to the peer measured just before, same profile):"
  printf "%-14s %9s %9s %7s %9s %9s %7s %10s %7s\n" "profile" "BR(def)" "aria-x16" "ratio" "BR(8)" "aria-x8" "ratio" "BR->Azurite" "ratio"
  for rate in $rates; do
    for ttfb in $ttfbs; do
      shape "$((rate * 1000000))" "$ttfb"
      p="g${rate}-${ttfb}"
      aria "$p-aria16" 16
      br "$p-br" local
      aria "$p-aria8" 8
      br "$p-br8" local --connections 8 --max-connections 8
      br "$p-az" azurite
      printf "%-14s %9s %9s %7s %9s %9s %7s %10s %7s\n" "${rate}MB/s ${ttfb}ms" "$(mbps "$p-br")" "$(mbps "$p-aria16")" "x$(ratio "$p-br" "$p-aria16")" \
        "$(mbps "$p-br8")" "$(mbps "$p-aria8")" "x$(ratio "$p-br8" "$p-aria8")" "$(mbps "$p-az")" "x$(ratio "$p-az" "$p-aria16")"
    done
  done
  shape 0 0
  echo "(BR(def) is the default: 16 connections growing to 32 while more pay; BR(8) is fixed at 8; BR->Azurite ratio is to aria2c -x 16 into a local directory; the CPU s/GB and RSS of every run are in the summary below)"
fi

# 2b. The CPU-bound profile: 32 MB/s per connection at 50 ms, where 16 connections could carry more than two cores can
# hash; quiet, then with one core's worth of other work beside it (one `yes > /dev/null`, which spins one core in
# user time for as long as it runs). More connections must never make BackupRelay slower.
if [ "${CPU_PROFILE:-1}" != 0 ]; then
  echo
  echo "CPU-bound profile (32 MB/s per connection, 50 ms; ${size_mib} MiB into a local directory; MB/s and CPU s/GB):"
  printf "%-8s %14s %14s %14s %14s %9s %9s %9s\n" load "BR(default)" "BR(16)" "BR(32)" "aria-x16" "def/aria" "16/aria" "32/aria"
  echo "(each cell: MB/s, CPU s/GB of the tool; the emulator's own CPU s/GB serving it is in the summary's last column)"
  shape 32000000 50
  for load in quiet loaded; do
    loader=""
    if [ "$load" = loaded ]; then yes > /dev/null & loader=$!; pids+=("$loader"); fi
    aria "cpu-$load-aria16" 16
    br "cpu-$load-brdef" local
    br "cpu-$load-br16" local --connections 16 --max-connections 16
    br "cpu-$load-br32" local --connections 32 --max-connections 32
    [ -z "$loader" ] || kill "$loader"
    cell() { echo "$(mbps "$1") $(cpu_per_gb "$1")"; }
    printf "%-8s %14s %14s %14s %14s %9s %9s %9s\n" "$load" "$(cell "cpu-$load-brdef")" "$(cell "cpu-$load-br16")" "$(cell "cpu-$load-br32")" \
      "$(cell "cpu-$load-aria16")" "x$(ratio "cpu-$load-brdef" "cpu-$load-aria16")" "x$(ratio "cpu-$load-br16" "cpu-$load-aria16")" \
      "x$(ratio "cpu-$load-br32" "cpu-$load-aria16")"
    echo "         (the default reached $(sed -E 's/.*connections=([0-9]+).*/\1/' "$work/cpu-$load-brdef.out") connections)"
  done
  shape 0 0
fi

# 3. 8 GiB, and 24 copies at once.
if [ "$big" -gt 0 ]; then
  read -r _ big_link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup" --index 1)
  curl -s -o /dev/null -I "$big_link"
  mkdir -p "$work/big"
  measure backuprelay-local-8g dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$big_link" --local "$work/big" --path big.bin
  rm -rf "$work/big"
  read -r outcome length _ < "$work/backuprelay-local-8g.out"
  [ "$outcome" = Completed ] && [ "$length" = "$big" ] || { echo "the 8 GiB copy failed: $(cat "$work/backuprelay-local-8g.out")"; exit 1; }
  echo
  echo "${big_mib} MiB -> local dir: $(mbps backuprelay-local-8g "$big") MB/s, $(cpu_per_gb backuprelay-local-8g "$big") CPU s/GB (x$(awk -v a="$(cpu_per_gb backuprelay-local-8g "$big")" -v f="$floor" 'BEGIN{printf "%.2f", a/f}') the hash floor), peak RSS $(rss_mb backuprelay-local-8g) MB (target < 200 MB)"
fi
if [ "${MANY:-1}" != 0 ]; then
  for i in $(seq 2 $((many + 1))); do
    read -r _ l < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup" --index "$i")
    curl -s -o /dev/null -I "$l"
  done
  mkdir -p "$work/many"
  measure backuprelay-many dotnet "$bin/BackupRelay.DevTools.dll" copy-many --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup" \
    --from 2 --count "$many" --local "$work/many"
  rm -rf "$work/many"
  read -r done_count _ < "$work/backuprelay-many.out"
  [ "$done_count" = "$many" ] || { echo "the $many copies did not all complete: $(cat "$work/backuprelay-many.out")"; exit 1; }
  echo "$many x 256 MiB at once in one process -> local dir: $(mbps backuprelay-many $((many * many_bytes))) MB/s together, peak RSS $(rss_mb backuprelay-many) MB (target < 200 MB)"
fi

echo
echo "summary (run wall-s user-s sys-s peak-RSS-KiB emulator-cpu-s):"
cat "$work/summary"
