#!/usr/bin/env bash
# HTTP load benchmarks of the tutorial's platform with vegeta: `keyward dev`
# sets up the whole tutorial (keyward cloud, node agent, server with azure
# auth), then this measures
#   - azure login (POST /v1/auth/azure/login with the tutorial's body; warm
#     JWKS and ARM caches),
#   - node agent token requests from the demo pod's address (warm cache),
#   - keyward cloud's IMDS token endpoint (what the agent calls upstream).
# Prints a Markdown table.
#
# Usage: scripts/bench-platform.sh [duration] [workers]   (default 10s, 16)
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
"$work/keyward" dev -address "127.0.0.1:$port" >"$work/dev.out" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "Press Ctrl-C" "$work/dev.out" 2>/dev/null && break; sleep 0.1; done
grep -q "Press Ctrl-C" "$work/dev.out" || { cat "$work/dev.out"; exit 1; }
agent=$(awk '/export AZURE_POD_IDENTITY_AUTHORITY_HOST=/ {sub(/.*=/,""); print}' "$work/dev.out")
vault=$(awk '/export VAULT_ADDR=/ {sub(/.*=/,""); print}' "$work/dev.out")
imds=$(awk '/node IMDS/ {print $3}' "$work/dev.out")
clouddir=$(awk '/export KEYWARD_CLOUD_DIR=/ {sub(/.*=/,""); print}' "$work/dev.out")
# The node has two identities (demo and vault): IMDS needs a client_id.
demo_client=$(KEYWARD_CLOUD_DIR="$clouddir" "$work/keyward" cloud identity show -g MC_aks-demo-rg_demo-cluster_canadacentral -n demo --query clientId -otsv)

tokurl="/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"
metadata=$(curl -s --interface 127.0.0.2 -H Metadata:true "$agent/metadata/instance?api-version=2017-08-01")
jwt=$(curl -s --interface 127.0.0.2 -H Metadata:true "$agent$tokurl" | jq -r .access_token)
jq -n --arg jwt "$jwt" --argjson md "$metadata" '{role:"aks-role", jwt:$jwt,
  subscription_id:$md.compute.subscriptionId, resource_group_name:$md.compute.resourceGroupName,
  vm_name:$md.compute.name, vmss_name:$md.compute.vmScaleSetName}' > "$work/login.json"
curl -sf -X POST --data @"$work/login.json" "$vault/v1/auth/azure/login" | jq -e .auth.client_token >/dev/null

n=0
run() { # name, target-file, [extra vegeta flags]
  local name=$1 target=$2; shift 2
  n=$((n+1))
  "$work/vegeta" attack -targets="$target" -rate=0 -max-workers="$workers" -duration="$duration" "$@" > "$work/run$n.bin"
  "$work/vegeta" report -type=json < "$work/run$n.bin" > "$work/run$n.json"
  jq -r --arg n "$name" '"| \($n) | \(.throughput|floor) | \(.latencies["50th"]/1000|floor) µs | \(.latencies["99th"]/1000|floor) µs | \(.success*100) % |"' "$work/run$n.json"
}
printf 'POST %s/v1/auth/azure/login\n@%s\n' "$vault" "$work/login.json" > "$work/t-login"
printf 'GET %s%s\nMetadata: true\n' "$agent" "$tokurl" > "$work/t-agent"
printf 'GET %s%s&client_id=%s\nMetadata: true\n' "$imds" "$tokurl" "$demo_client" > "$work/t-imds"

echo "| endpoint | req/s | p50 | p99 | success |"
echo "|---|---|---|---|---|"
run "azure login (server, warm JWKS + ARM caches)" "$work/t-login"
run "node agent token (demo pod 127.0.0.2, warm cache)" "$work/t-agent" -laddr 127.0.0.2
# Real IMDS allows 20 identity requests per second per VM (and keyward
# cloud enforces it), so this run uses a fixed rate under that limit.
run "keyward cloud IMDS token (15 req/s, under IMDS's 20/s limit)" "$work/t-imds" -rate=15
echo
echo "(duration $duration per run, $workers vegeta workers, rate unlimited; $(nproc) CPUs)"
