#!/usr/bin/env bash
# HTTP load benchmarks of the secrets server with vegeta (an established
# load generator, built from the module proxy through tools/lint/go.mod).
# Starts a real server with the tutorial's configuration (file storage),
# initializes and unseals it, then measures:
#   token lookup-self, KV v1 read, KV v2 read, KV v2 write
# and the server's RSS during the KV v1 read run. Prints a Markdown table.
#
# Usage: scripts/bench-http.sh [duration] [workers]   (default 10s, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
duration="${1:-10s}"
workers="${2:-16}"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/keyward" ./cmd/keyward
go build -modfile=tools/lint/go.mod -o "$work/vegeta" github.com/tsenart/vegeta/v12
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="http://127.0.0.1:$port"
cat > "$work/config.hcl" <<HCL
ui = true
listener "tcp" {
  tls_disable = 1
  address = "127.0.0.1:$port"
}
storage "file" {
  path = "$work/data"
}
HCL
HOME="$work" "$work/keyward" server -config "$work/config.hcl" -log-level=error >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done

init=$(curl -sf -X PUT "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
key=$(echo "$init" | jq -r '.keys_base64[0]')
root=$(echo "$init" | jq -r .root_token)
curl -sf -X PUT "$addr/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null
h=(-H "X-Vault-Token: $root")
curl -sf "${h[@]}" -X POST "$addr/v1/sys/mounts/aks" -d '{"type":"kv"}'
curl -sf "${h[@]}" -X POST "$addr/v1/sys/mounts/secret" -d '{"type":"kv","options":{"version":"2"}}'
curl -sf "${h[@]}" -X PUT "$addr/v1/aks/mysecret" -d '{"foo":"bar"}'
curl -sf "${h[@]}" -X PUT "$addr/v1/secret/data/mysecret" -d '{"data":{"foo":"bar"}}' >/dev/null
echo '{"data":{"foo":"bar","n":"1"}}' > "$work/write.json"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

n=0
run() { # name, method, path, [body]
  local name=$1 method=$2 path=$3 body=${4:-}
  n=$((n+1))
  local f="$work/run$n"
  local target="$method $addr$path"$'\n'"X-Vault-Token: $root"
  [ -n "$body" ] && target+=$'\n'"@$body"
  printf '%s\n' "$target" > "$work/target"
  "$work/vegeta" attack -targets="$work/target" -rate=0 -max-workers="$workers" -duration="$duration" > "$f.bin"
  "$work/vegeta" report -type=json < "$f.bin" > "$f.json"
  jq -r --arg n "$name" '"| \($n) | \(.throughput|floor) | \(.latencies["50th"]/1000|floor) µs | \(.latencies["99th"]/1000|floor) µs | \(.success*100) % |"' "$f.json"
}

echo "| endpoint | req/s | p50 | p99 | success |"
echo "|---|---|---|---|---|"
run "token lookup-self" GET /v1/auth/token/lookup-self
rss_before=$(rss_kb)
( max=0; while kill -0 "$pid" 2>/dev/null; do r=$(rss_kb || echo 0); [ "${r:-0}" -gt "$max" ] && max=$r && echo "$max" > "$work/rss_max"; sleep 0.2; done ) &
sampler=$!
run "KV v1 read (aks/mysecret)" GET /v1/aks/mysecret
kill "$sampler" 2>/dev/null || true
run "KV v2 read (secret/data/mysecret)" GET /v1/secret/data/mysecret
run "KV v2 write (secret/data/bench)" POST /v1/secret/data/bench "$work/write.json"
echo
echo "Server RSS before the KV v1 read run: $((rss_before/1024)) MiB; peak during it: $(( $(cat "$work/rss_max" 2>/dev/null || echo 0) / 1024 )) MiB"
echo "(duration $duration per run, $workers vegeta workers, rate unlimited; $(nproc) CPUs)"
