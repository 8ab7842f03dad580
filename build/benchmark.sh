#!/usr/bin/env bash
# Copy benchmark: one large file from the emulator's OBS endpoint to (a) Azurite and (b) a local
# directory, with BackupRelay's copy engine and with `rclone copyurl`, plus `curl -o /dev/null` as
# the source's limit. Then the same from a WAN-shaped source (16 MB/s per connection, 80 ms to the
# first byte, as one stream across clouds), beside a parallel ranged downloader (aria2c -x 8 -s 8),
# BackupRelay at 1, 4, 8 and 16 download connections; the hash floor (MD5 + SHA-256 of the same
# number of bytes from memory); and one 8 GiB copy to show the peak RSS stays flat.
# Every tool runs in its own process under GNU time (wall, CPU, peak RSS) in the same run, so the
# ratios hold on a noisy machine.
#   bash build/benchmark.sh [size-in-MiB, default 1024]     (SHAPED=0 skips the shaped part, BIG_MIB=0 the 8 GiB copy)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
size_mib="${1:-1024}"
size=$((size_mib * 1024 * 1024))
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

need=()
command -v rclone >/dev/null || need+=(rclone)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
[ "${SHAPED:-1}" = 0 ] || command -v aria2c >/dev/null || need+=(aria2)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages)"
  apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -d node_modules/azurite ] || npm ci --no-audit --no-fund --loglevel=error
dotnet build -c Release src/BackupRelay.DevTools -v quiet -nologo 2>&1 | grep -E "error|Warn" || true

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

source build/bench-source.sh
big_mib="${BIG_MIB:-8192}"
big=$((big_mib * 1024 * 1024))
bench_emulator "$work" "$size" "$([ "$big" -gt 0 ] && echo "$big")"
blob_port="$(free_port)"; queue_port="$(free_port)"; table_port="$(free_port)"
bin=src/BackupRelay.DevTools/bin/Release/net10.0
node node_modules/azurite/dist/src/azurite.js --silent --inMemoryPersistence --disableTelemetry \
  --blobHost 127.0.0.1 --blobPort "$blob_port" --queueHost 127.0.0.1 --queuePort "$queue_port" \
  --tableHost 127.0.0.1 --tablePort "$table_port" >"$work/azurite.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$blob_port/" && break
  sleep 0.2
done

read -r file link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup")
read -r want_md5 want_sha < <(dotnet "$bin/BackupRelay.DevTools.dll" hashes --backup "$backup" --file "$file" --size "$size")
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1"
# rclone 1.60 reaches an emulator on any port through an account SAS URL.
sas="$(dotnet "$bin/BackupRelay.DevTools.dll" sas)"
rclone_azure=":azureblob,sas_url='http://127.0.0.1:$blob_port/devstoreaccount1?$sas':"

# measure NAME command...: wall seconds, user+sys CPU seconds, peak RSS KiB
measure() {
  local name="$1"; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || { echo "$name failed:"; cat "$work/$name.err"; exit 1; }
}

# verified RUN...: each BackupRelay run printed a complete copy with the expected length and hashes
verified() {
  local run outcome length md5 sha
  for run in "$@"; do
    read -r outcome length md5 sha _ < "$work/$run.out"
    [ "$outcome" = Completed ] && [ "$length" = "$size" ] && [ "$md5" = "$want_md5" ] && [ "$sha" = "$want_sha" ] \
      || { echo "$run did not produce a verified copy: $(cat "$work/$run.out")"; exit 1; }
  done
}

# table WIDTH RUN...: MB/s, CPU s/GB and peak RSS of each run; each also goes into $work/summary
table() {
  local width="$1" run wall user sys rss; shift
  printf "%-${width}s %10s %12s %12s\n" "run" "MB/s" "CPU s/GB" "peak RSS MB"
  for run in "$@"; do
    read -r wall user sys rss < "$work/$run.time"
    awk -v n="$run" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v b="$size" -v width="$width" \
      'BEGIN { printf "%-" width "s %10.1f %12.2f %12.1f\n", n, b/1e6/w, (u+s)/(b/1e9), r/1024 }'
    echo "$run $wall $user $sys $rss" >> "$work/summary"
  done
}

measure curl curl -s -o /dev/null "$link"
measure hash-floor dotnet "$bin/BackupRelay.DevTools.dll" hashfloor --size-mib "$size_mib"
mkdir -p "$work/local-br" "$work/local-rclone"
measure backuprelay-local dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --local "$work/local-br" --path bench.bin
rm -rf "$work/local-br"
measure rclone-local rclone copyurl "$link" "$work/local-rclone/bench.bin"
rm -rf "$work/local-rclone"
measure backuprelay-azurite dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --blob "$conn" --container bench-br --path bench.bin
rclone mkdir "${rclone_azure}bench-rclone" 2>/dev/null || true
measure rclone-azurite rclone copyurl "$link" "${rclone_azure}bench-rclone/bench.bin"

verified backuprelay-local backuprelay-azurite

echo
echo "Copy benchmark: ${size_mib} MiB from the emulator's OBS endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
table 22 curl backuprelay-local rclone-local backuprelay-azurite rclone-azurite
floor="$(awk '{print $1}' "$work/hash-floor.out")"
printf "%-22s %10s %12.2f   (MD5 + SHA-256 of the same bytes from memory, CPU only)\n" hash-floor "" "$floor"
awk -v b="$size" '
  { wall[$1]=$2; user[$1]=$3; sys[$1]=$4; rss[$1]=$5 }
  END {
    printf "\nBackupRelay → Azurite vs rclone → Azurite: throughput x%.2f, peak RSS x%.2f\n", wall["rclone-azurite"]/wall["backuprelay-azurite"], rss["backuprelay-azurite"]/rss["rclone-azurite"]
    printf "BackupRelay → local dir vs the source limit (curl): %.0f%%\n", 100*wall["curl"]/wall["backuprelay-local"]
    printf "BackupRelay → local dir vs rclone → local dir: throughput x%.2f, peak RSS x%.2f\n", wall["rclone-local"]/wall["backuprelay-local"], rss["backuprelay-local"]/rss["rclone-local"]
    printf "BackupRelay peak RSS: local %.0f MB, Azurite %.0f MB (target < 200 MB)\n", rss["backuprelay-local"]/1024, rss["backuprelay-azurite"]/1024
    cpu = (user["backuprelay-local"] + sys["backuprelay-local"]) / (b/1e9)
    printf "BackupRelay → local dir CPU: %.2f s/GB = x%.2f the hash floor (target <= x1.5)\n", cpu, cpu/floor
  }' floor="$floor" "$work/summary"

big_copy() {
  [ "$big" -gt 0 ] || return 0
  # One 8 GiB file, unshaped, into a local directory: the peak RSS must not grow with the file.
  local big_link
  read -r _ big_link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup" --index 1)
  mkdir -p "$work/big"
  measure backuprelay-local-8g dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$big_link" --local "$work/big" --path big.bin
  rm -rf "$work/big"
  read -r outcome length _ < "$work/backuprelay-local-8g.out"
  [ "$outcome" = Completed ] && [ "$length" = "$big" ] || { echo "the 8 GiB copy failed: $(cat "$work/backuprelay-local-8g.out")"; exit 1; }
  read -r wall user sys rss < "$work/backuprelay-local-8g.time"
  echo
  awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v b="$big" -v m="$big_mib" -v r1="$(awk '$1=="backuprelay-local"{print $5}' "$work/summary")" \
    'BEGIN { printf "%d MiB → local dir: %.1f MB/s, %.2f CPU s/GB, peak RSS %.1f MB (x%.2f the %s MiB copy'"'"'s; target < 200 MB)\n", m, b/1e6/w, (u+s)/(b/1e9), r/1024, r/r1, "'"$size_mib"'" }'
}

if [ "${SHAPED:-1}" = 0 ]; then big_copy; exit 0; fi

# The same file from a WAN-shaped source: every download connection capped, a wait before the first byte.
per_connection=16000000
settings="$(curl -s "http://127.0.0.1:$emu_port/_emulator/settings")"
shaped="$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["obsBytesPerSecondPerConnection"]=int(sys.argv[2]); s["obsTimeToFirstByteMs"]=80; print(json.dumps(s))' "$settings" "$per_connection")"
curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' -d "$shaped" "http://127.0.0.1:$emu_port/_emulator/settings"
mkdir -p "$work/s-br" "$work/s-rclone" "$work/s-aria"
measure shaped-backuprelay-local dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --local "$work/s-br" --path bench.bin
rm -rf "$work/s-br"
for c in 1 4 8; do
  mkdir -p "$work/s-br$c"
  measure "shaped-backuprelay-local-c$c" dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --local "$work/s-br$c" --path bench.bin --connections "$c"
  rm -rf "$work/s-br$c"
done
measure shaped-rclone-local rclone copyurl "$link" "$work/s-rclone/bench.bin"
rm -rf "$work/s-rclone"
measure shaped-aria2c-local aria2c --quiet=true -x 8 -s 8 -k 1M --file-allocation=none -d "$work/s-aria" -o bench.bin "$link"
rm -rf "$work/s-aria"
measure shaped-aria2c-x16-local aria2c --quiet=true -x 16 -s 16 -k 1M --file-allocation=none -d "$work/s-aria" -o bench.bin "$link"
rm -rf "$work/s-aria"
measure shaped-backuprelay-azurite dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --blob "$conn" --container bench-sbr --path bench.bin
rclone mkdir "${rclone_azure}bench-srclone" 2>/dev/null || true
measure shaped-rclone-azurite rclone copyurl "$link" "${rclone_azure}bench-srclone/bench.bin"
verified shaped-backuprelay-local shaped-backuprelay-azurite shaped-backuprelay-local-c1 shaped-backuprelay-local-c4 shaped-backuprelay-local-c8

echo
echo "Shaped source: $((per_connection / 1000000)) MB/s per connection, 80 ms to the first byte"
table 30 shaped-backuprelay-local shaped-rclone-local shaped-aria2c-local shaped-backuprelay-azurite shaped-rclone-azurite \
  shaped-backuprelay-local-c1 shaped-backuprelay-local-c4 shaped-backuprelay-local-c8 shaped-aria2c-x16-local
awk '
  { wall[$1]=$2 }
  END {
    printf "\nShaped, local dir: BackupRelay (16 connections) x%.2f of rclone copyurl, x%.2f of aria2c -x 8, x%.2f of aria2c -x 16 (targets: >= x4 and >= x1.0)\n", wall["shaped-rclone-local"]/wall["shaped-backuprelay-local"], wall["shaped-aria2c-local"]/wall["shaped-backuprelay-local"], wall["shaped-aria2c-x16-local"]/wall["shaped-backuprelay-local"]
    printf "At 8 connections each: BackupRelay x%.2f of aria2c -x 8\n", wall["shaped-aria2c-local"]/wall["shaped-backuprelay-local-c8"]
    printf "Shaped, Azurite: BackupRelay x%.2f of rclone copyurl (target: >= x3)\n", wall["shaped-rclone-azurite"]/wall["shaped-backuprelay-azurite"]
  }' "$work/summary"
curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' -d "$settings" "http://127.0.0.1:$emu_port/_emulator/settings"
big_copy
