#!/usr/bin/env bash
# Runs every test BackupRelay has, on a fresh machine: installs the pinned Azurite (npm ci),
# restores and builds the solution, publishes the Functions app to artifacts/functions, runs the unit then the integration tests, and ends with
# one line "N passed, M failed, K skipped" summed over all test assemblies.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error || { echo "0 passed, 1 failed"; exit 1; }
fi

build_log="$(mktemp)"
if ! dotnet build Functions.sln -c Release >"$build_log" 2>&1; then
  # Each error and warning once, with its file, line and message (MSBuild repeats them in its summary).
  grep -E ': (error|warning) [A-Z]+[0-9]+' "$build_log" | sed -E 's/ \[[^]]*\]$//' | sort -u
  grep -E ': (error|warning) [A-Z]+[0-9]+' "$build_log" >/dev/null || tail -n 30 "$build_log"
  echo "build failed"
  echo "0 passed, 1 failed"
  rm -f "$build_log"
  exit 1
fi
tail -n 3 "$build_log"
rm -f "$build_log"

# The Functions app as it is deployed (dotnet publish): the worker tests run this folder through the local Functions host.
if ! dotnet publish src/BackupRelay.Functions -c Release --no-build -o artifacts/functions -nologo -v quiet >/dev/null; then
  echo "publishing src/BackupRelay.Functions failed"
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
for project in tests/BackupRelay.Tests.Unit tests/BackupRelay.Tests.Integration; do
  [ -d "$project" ] || continue
  dotnet test "$project" -c Release --no-build 2>&1 | tee -a "$log" \
    | grep -E -A3 '^\s+(Failed|Skipped) |^(Passed|Failed)!' | grep -v '^--$' || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

summary=$(grep -E '^(Passed|Failed)!' "$log" | sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+), Skipped: *([0-9]+).*/\1 \2 \3/' \
  | awk '{f+=$1; p+=$2; s+=$3} END {printf "%d %d %d", p, f, s}')
read -r passed failed skipped <<<"$summary"
if [ "${passed:-0}" -eq 0 ] && [ "${failed:-0}" -eq 0 ]; then
  failed=1
  status=1
fi
[ "${failed:-0}" -eq 0 ] || status=1
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
