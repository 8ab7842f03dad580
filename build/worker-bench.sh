# Sourced by the benchmarks that run the published worker (fanout-benchmark.sh, runs-benchmark.sh): installs
# Azurite if missing, builds the solution and publishes the Functions app to artifacts/functions, as
# build/test.sh does for the tests.
prepare_worker() {
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  [ -d node_modules/azurite ] || npm ci --no-audit --no-fund --loglevel=error
  dotnet build Functions.sln -c Release -v quiet -nologo 2>&1 | grep -E " error |warning [A-Z]+[0-9]+" | grep -v NU1603 || true
  dotnet publish src/BackupRelay.Functions -c Release --no-build -o artifacts/functions -v quiet -nologo
}
