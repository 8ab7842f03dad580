# Sourced by build/benchmark.sh and build/profile-copy.sh: one large backup file served by the Huawei
# Cloud emulator, as both measure it.
#   bench_emulator DIR SIZE [SIZE2]  writes DIR/seed.json (one graph, one backup of a SIZE-byte file [and a SIZE2-byte one]), starts the
#                            emulator on a free port (pid appended to the caller's pids array), waits for it,
#                            and sets emu_port, graph and backup.

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
  pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$emu_port/" && return 0; sleep 0.2; done
  echo "the emulator did not start:"; cat "$dir/emulator.log"; return 1
}
