#!/usr/bin/env bash
# Builds the Azure Functions deployment package: the isolated worker app as `dotnet publish` writes it
# (functions.metadata, worker.config.json, host.json, extensions.json and .azurefunctions/), zipped for
# `az functionapp deployment source config-zip` / Flex one-deploy (runtime dotnet-isolated 10.0).
#   bash build/package.sh [output.zip] [--no-build]   (default artifacts/backuprelay.zip; --no-build packages the
#   Release build already made, as the tests do right after build/test.sh built it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="artifacts/backuprelay.zip"
build=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=(--no-build) ;;
    *) out="$arg" ;;
  esac
done
case "$out" in /*) ;; *) out="$root/$out" ;; esac
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dotnet publish src/BackupRelay.Functions -c Release "${build[@]}" -o "$stage" -v quiet -nologo

mkdir -p "$(dirname "$out")"
rm -f "$out"
# zip with Unix modes kept; the hidden .azurefunctions/ folder is included.
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
