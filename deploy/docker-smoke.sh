#!/usr/bin/env bash
# End-to-end check of the Docker image and docker-compose.yml, run on demand:
# three peers in containers (peer1 - peer2 - peer3), a file dropped into
# peer3's share, located from peer1 by flooding and downloaded into peer1's
# container over gRPC, then compared byte for byte. Tears everything down
# (containers, network, volumes) whatever happens.
#
#   deploy/docker-smoke.sh            # needs a Docker engine and compose
#
# Uses host ports 5001-5003 and 50051-50053 as docker-compose.yml publishes them.
set -euo pipefail
cd "$(dirname "$0")/.."

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  echo "docker-smoke: needs 'docker compose' or docker-compose" >&2
  exit 2
fi
project="peerkit-smoke-$$"
dc() { "${compose[@]}" -p "$project" "$@"; }
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== build and start three peers"
dc up -d --build

echo "== wait until every peer is healthy (at most 90 s)"
deadline=$((SECONDS + 90))
for svc in peer1 peer2 peer3; do
  id=$(dc ps -q "$svc")
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "docker-smoke: $svc is not healthy" >&2
      dc logs "$svc" | tail -20 >&2
      exit 1
    fi
    sleep 1
  done
done

echo "== share a 5 MB file on peer3"
want=$(dc exec -T peer3 sh -c 'head -c 5000000 /dev/urandom > /data/shared/smoke.bin && sha256sum /data/shared/smoke.bin' | cut -d' ' -f1)

echo "== peer1 locates it by flooding"
deadline=$((SECONDS + 30))
until dc exec -T peer1 peerkit locate smoke.bin --json | grep -q '"peer3"'; do
  if [ $SECONDS -ge $deadline ]; then
    echo "docker-smoke: peer1 never found smoke.bin on peer3" >&2
    exit 1
  fi
  sleep 1
done

echo "== peer1 downloads it over gRPC and checks the bytes"
dc exec -T peer1 peerkit download smoke.bin -o /tmp/smoke.bin
got=$(dc exec -T peer1 sha256sum /tmp/smoke.bin | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "docker-smoke: sha256 differs: got $got, want $want" >&2
  exit 1
fi

echo "== the host reaches the peers through the published ports"
python3 - <<'PY'
import json, urllib.request
for port in (5001, 5002, 5003):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=5) as r:
        s = json.load(r)
    print(f"   {s['name']}: {s['files']} files, {s['peers_alive']} peers alive")
PY
echo "docker-smoke: ok ($want)"
