#!/usr/bin/env bash
# Builds the Azure Functions deployment package on Linux: host.json, every function folder, and the
# handler published self-contained for linux-x64 (ReadyToRun, no trimming) into handler/, with its
# execute bit, zipped for `az functionapp deployment source config-zip` / Flex one-deploy.
#   bash build/package.sh [output.zip]   (default artifacts/backuprelay.zip)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-artifacts/backuprelay.zip}"
case "$out" in /*) ;; *) out="$root/$out" ;; esac
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dotnet publish src/BackupRelay.Host -c Release -r linux-x64 --self-contained true \
  -p:PublishReadyToRun=true -p:PublishTrimmed=false -o "$stage/handler" -v quiet -nologo
cp host.json "$stage/"
for dir in */; do
  [ -f "$dir/function.json" ] && mkdir -p "$stage/$dir" && cp "$dir/function.json" "$stage/$dir"
done
chmod 755 "$stage/handler/BackupRelay.Host"

mkdir -p "$(dirname "$out")"
rm -f "$out"
# zip with Unix modes kept (the execute bit survives on Linux plans).
python3 - "$stage" "$out" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, _, files in os.walk(stage):
        for name in sorted(files):
            path = os.path.join(folder, name)
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, stage))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY
echo "$out ($(du -h "$out" | cut -f1))"
