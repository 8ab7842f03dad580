#!/usr/bin/env bash
# Runs every test BackupRelay has, on a fresh machine: installs the pinned Azurite and s3rver (npm ci, skipped
# when node_modules was installed from this very package-lock.json),
# restores and builds the solution, publishes the Functions app to artifacts/functions, runs the unit tests beside the integration tests, and ends with
# one line "N passed, M failed, K skipped" summed over all test assemblies.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

started=$SECONDS
# npm ci (network and disk) runs beside the build (CPU); the tests wait for both.
npm_pid="" npm_log="$(mktemp)"
if [ -f package-lock.json ]; then
  lock="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ "$(cat node_modules/.installed-from-lock 2>/dev/null)" = "$lock" ]; then
    echo "npm packages: installed from this package-lock.json already"
  else
    ( npm ci --no-audit --no-fund --loglevel=error && echo "$lock" > node_modules/.installed-from-lock ) >"$npm_log" 2>&1 &
    npm_pid=$!
  fi
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

if [ -n "$npm_pid" ]; then
  if ! wait "$npm_pid"; then
    cat "$npm_log"
    echo "npm ci failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "npm packages: installed ($(grep -E '^added' "$npm_log" || echo "npm ci done"))"
fi
rm -f "$npm_log"

status=0
passed=0 failed=0 skipped=0

# One test project: its console log in $2, its exit code in $2.code; progress every 25 tests on stdout.
run_tests() {
  local project="$1" out="$2"
  dotnet test "$project" -c Release --no-build --logger "console;verbosity=normal" 2>&1 | tee "$out" \
    | awk -v t0="$(( $(date +%s) - (SECONDS - started) ))" '
        function elapsed(  now) { "date +%s" | getline now; close("date +%s"); return now - t0 }
        /^  (Passed|Failed|Skipped) [^ ]/ { n++; if (n % 25 == 0) { printf "  ... %d tests done (%d s)\n", n, elapsed(); fflush() } }
        /^  (Failed|Skipped) [^ ]/ { show = 16 }
        show > 0 { print; show--; fflush(); next }
        /^Test Run (Successful|Failed|Aborted)/ { print; fflush() }'
  echo "${PIPESTATUS[0]}" >"$out.code"
}

# Adds a finished project's counts to the totals and prints its line.
tally() {
  local project="$1" out="$2" code p f k
  code="$(cat "$out.code" 2>/dev/null || echo 1)"
  p=$(grep -cE '^  Passed [^ ]' "$out"); f=$(grep -cE '^  Failed [^ ]' "$out"); k=$(grep -cE '^  Skipped [^ ]' "$out")
  echo "$(basename "$project"): $p passed, $f failed, $k skipped ($((SECONDS - started)) s since the start)"
  if [ "$code" -ne 0 ]; then
    status=1
    [ "$f" -gt 0 ] || f=1 # the test run itself failed (a crashed test host): counted as a failure
  fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
}

# The unit tests (CPU only, about half a minute) run beside the integration tests, which spend most of their time
# waiting on processes and timers; their failures are printed when they end, their counts at the end.
unit=tests/BackupRelay.Tests.Unit integration=tests/BackupRelay.Tests.Integration
unit_log="$log.unit" integration_log="$log.integration"
trap 'rm -f "$log" "$unit_log" "$unit_log.code" "$integration_log" "$integration_log.code"' EXIT
echo "$(basename "$unit") and $(basename "$integration"): running ($((SECONDS - started)) s since the start)"
run_tests "$unit" "$unit_log" | sed -u "s/^/[unit] /" &
unit_pid=$!
run_tests "$integration" "$integration_log"
wait "$unit_pid"
tally "$unit" "$unit_log"
tally "$integration" "$integration_log"

if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
  status=1
fi
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
