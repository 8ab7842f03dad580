#!/usr/bin/env bash
# Restore benchmark (docs/benchmarks.md, "The way back"). One copy file in Azurite, uploaded to the emulator's OBS
# (S3 API, Signature V4) by BackupRelay's restore engine and by `rclone copyto` from the same blob, each in its own
# process under GNU time (wall, CPU, peak RSS), all in one run so the ratios hold on a noisy machine:
#  1. unshaped, at 4 and 16 connections each (rclone: --s3-upload-concurrency, 16 MiB chunks, as BackupRelay's parts);
#  2. long-haul write profiles set on the emulator (per-connection rate x time to the answer), at 4 connections;
#  3. BackupRelay's drill read-back of the same object beside `curl` reading it whole (one connection).
# Also prints the emulator's peak RSS over the whole run (its memory must not grow with the object).
#   bash build/restore-benchmark.sh [size-in-MiB, default 1024]
#   RATES="4 16 32" (MB/s per connection) TTFBS="50 300" (ms) change the grid; GRID=0 skips it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
size_mib="${1:-1024}"
size=$((size_mib * 1024 * 1024))
rates="${RATES:-4 16 32}"
ttfbs="${TTFBS:-50 300}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

source build/bench-source.sh
bench_tools rclone time curl
bench_start

bench_emulator "$work" "$size"
bench_azurite "$work"
bin=src/BackupRelay.DevTools/bin/Release/net10.0
obs="http://127.0.0.1:$emu_port/obs"
bucket=ges-restore-bucket
ak=EMULATORACCESSKEY001 sk=emulator-secret-key-0000000000000000000001

# The copy to bring back: the backup file copied into Azurite by the copy engine (as a scheduled backup leaves it).
read -r file link < <(dotnet "$bin/BackupRelay.DevTools.dll" link --emulator "http://127.0.0.1:$emu_port/" --graph "$graph" --backup "$backup")
read -r want_md5 want_sha < <(dotnet "$bin/BackupRelay.DevTools.dll" hashes --backup "$backup" --file "$file" --size "$size")
dotnet "$bin/BackupRelay.DevTools.dll" copy --link "$link" --blob "$conn" --container restore-src --path bench.bin >/dev/null

sas="$(dotnet "$bin/BackupRelay.DevTools.dll" sas)"
rclone_src=":azureblob,sas_url='http://127.0.0.1:$blob_port/devstoreaccount1?$sas':restore-src/bench.bin"
rclone_dst=":s3,provider=Other,access_key_id=$ak,secret_access_key=$sk,endpoint='$obs',region=cn-north-4,force_path_style=true:$bucket"

br() { # br NAME CONNECTIONS [read-back] [most connections: the sends grow from CONNECTIONS while more pay]
  measure "$1" dotnet "$bin/BackupRelay.DevTools.dll" upload --blob "$conn" --container restore-src --path bench.bin --size "$size" \
    --md5 "$want_md5" --sha256 "$want_sha" --obs "$obs" --bucket "$bucket" --key "br/$1.bin" --concurrency "$2" --read-back "${3:-false}" \
    --max-connections "${4:-$2}"
  grep -q "^Completed " "$work/$1.out" || { echo "$1: $(cat "$work/$1.out")"; exit 1; }
}

rc() { # rc NAME CONNECTIONS (rclone 1.60's S3 client cannot take AWS_CA_BUNDLE with its own transport: plain HTTP here)
  measure "$1" env -u AWS_CA_BUNDLE rclone copyto "$rclone_src" "$rclone_dst/rclone/$1.bin" --s3-upload-concurrency "$2" --s3-chunk-size 16M \
    --s3-upload-cutoff 16M --retries 1 --low-level-retries 1
}

settings="$(curl -s "http://127.0.0.1:$emu_port/_emulator/settings")"
shape() { # shape RATE_BYTES TTFB_MS
  local shaped
  shaped="$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["obsWriteBytesPerSecondPerConnection"]=int(sys.argv[2]); s["obsWriteTimeToFirstByteMs"]=int(sys.argv[3]); print(json.dumps(s))' "$settings" "$1" "$2")"
  curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' -d "$shaped" "http://127.0.0.1:$emu_port/_emulator/settings"
}

row() { printf "%-28s %8s %10s %12s\n" "$1" "$(mbps "$1")" "$(cpu_per_gb "$1")" "$(rss_mb "$1")"; }

echo "Restore benchmark: ${size_mib} MiB from Azurite to the emulator's OBS; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
shape 0 0
for n in 4 16; do
  rc "rclone-x$n" "$n"
  br "backuprelay-x$n" "$n"
done
measure curl-read curl -sf -o /dev/null -w '%{http_code} %{size_download}' --aws-sigv4 "aws:amz:cn-north-4:s3" --user "$ak:$sk" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$obs/$bucket/br/backuprelay-x4.bin"
[ "$(cat "$work/curl-read.out")" = "200 $size" ] || { echo "curl did not read the object: $(cat "$work/curl-read.out")"; exit 1; }
# The same proof without BackupRelay: curl reading the object whole, its bytes through sha256sum (what a drill compares).
measure curl-hashed bash -c "curl -sf --aws-sigv4 'aws:amz:cn-north-4:s3' --user '$ak:$sk' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
  '$obs/$bucket/br/backuprelay-x4.bin' | sha256sum >'$work/curl-sha'"
grep -q "^$want_sha " "$work/curl-sha" || { echo "curl | sha256sum did not read the copy"; exit 1; }
br backuprelay-readback 4 true
read_back_seconds="$(sed -E 's/.* read-back=verified ([0-9.]+).*/\1/' "$work/backuprelay-readback.out")"

printf "%-28s %8s %10s %12s\n" run MB/s "CPU s/GB" "peak RSS MB"
for run in rclone-x4 backuprelay-x4 rclone-x16 backuprelay-x16 curl-read curl-hashed; do row "$run"; done
echo "BackupRelay x$(ratio backuprelay-x4 rclone-x4) of rclone at 4 connections, x$(ratio backuprelay-x16 rclone-x16) at 16 (unshaped)"
awk -v r="$read_back_seconds" -v c="$(col curl-read 2)" -v h="$(col curl-hashed 2)" -v b="$size" 'BEGIN { printf "drill read-back (4 ranges at once, SHA-256): %.1f MB/s; x%.2f of curl | sha256sum (%.1f MB/s), x%.2f of curl alone (%.1f MB/s, no proof)\n", b/1e6/r, h/r, b/1e6/h, c/r, b/1e6/c }'

if [ "${GRID:-1}" != 0 ]; then
  echo
  echo "long-haul writes (per connection; MB/s): BackupRelay at 4 connections, and at its default (4 growing to 16 while more"
  echo "pay: Obs__MaxUploadConnections), beside rclone at 4 (its default --s3-upload-concurrency):"
  printf "%-18s %10s %12s %10s %9s %9s %6s\n" profile "BR(4)" "BR(default)" "rclone(4)" "4/rclone" "def/rclone" "reached"
  for rate in $rates; do
    for ttfb in $ttfbs; do
      shape $((rate * 1000 * 1000)) "$ttfb"
      rc "rclone-$rate-$ttfb" 4
      br "backuprelay-$rate-$ttfb" 4
      br "backuprelay-def-$rate-$ttfb" 4 false 16
      printf "%-18s %10s %12s %10s %9s %9s %6s\n" "${rate} MB/s, ${ttfb} ms" "$(mbps "backuprelay-$rate-$ttfb")" "$(mbps "backuprelay-def-$rate-$ttfb")" \
        "$(mbps "rclone-$rate-$ttfb")" "x$(ratio "backuprelay-$rate-$ttfb" "rclone-$rate-$ttfb")" "x$(ratio "backuprelay-def-$rate-$ttfb" "rclone-$rate-$ttfb")" \
        "$(sed -E 's/.*connections=([0-9]+).*/\1/' "$work/backuprelay-def-$rate-$ttfb.out")"
    done
  done
  shape 0 0
fi

echo
awk '/^VmHWM/ { printf "emulator peak RSS over the whole run: %d MB (%s MiB objects written: %d)\n", $2 / 1024, "'"$size_mib"'", '"$(wc -l < "$work/summary")"' - 1 }' "/proc/$emu_pid/status"
