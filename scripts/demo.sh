#!/usr/bin/env bash
# The README's main command (`make demo`): synthesizes a small model (no download needed),
# creates a private swarm's credentials (a root and one credential per node: peers talk mutual
# TLS), starts a 3-node swarm on 127.0.0.1 — `parallax run` (scheduler, API and a worker) and two
# `parallax join` workers, each offering memory for 3 of the model's 8 layers, so the scheduler
# cuts the model into a 3-stage pipeline — streams a chat completion through it, prints the
# output and the route it took, and shuts every node down cleanly.
set -euo pipefail
parallax=${1:-build/parallax}
here=$(cd "$(dirname "$0")/.." && pwd)
models="$here/models"
mkdir -p "$models"

vocab_args=()
vocab="$here/../shared/vocab/ggml-vocab-llama-spm.gguf"
if [ -f "$vocab" ]; then vocab_args=(--vocab "$vocab"); fi

model="$models/demo-llama-q8_0.gguf"
if [ ! -f "$model" ]; then
  echo "demo: synthesizing $model (random weights: the text will be gibberish, the machinery is real)"
  "$parallax" model synth -o "$model" --arch llama --layers 8 --embd 512 --heads 8 --kv-heads 4 \
    --ff 1408 --ctx 2048 --type q8_0 --seed 42 "${vocab_args[@]}"
fi
"$parallax" model info "$model" | head -8

logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$logs"
}
trap cleanup EXIT

wait_ready() {  # log file -> prints the "ready ..." line
  for _ in $(seq 300); do
    if grep -q '^ready ' "$1"; then grep '^ready ' "$1"; return 0; fi
    sleep 0.1
  done
  echo "demo: a node did not start; its log:" >&2
  cat "$1" >&2
  return 1
}

echo
echo "demo: a private swarm: its root credential and one credential per node"
"$parallax" swarm init -o "$logs/swarm" --name demo | head -1
for n in 1 2 3; do "$parallax" swarm invite "$logs/swarm" -o "$logs/node$n" --days 1 | head -1; done

common=(-m "$model" --host 127.0.0.1 -t 1 --max-layers 3 --ctx 1024 --kv-cache-tokens 4096)
echo
echo "demo: node 1: parallax run (scheduler + API + worker)"
"$parallax" run "${common[@]}" --credentials "$logs/node1" --port 0 --p2p-port 0 --wait-nodes 3 >"$logs/node1.log" 2>&1 &
pids+=($!)
ready=$(wait_ready "$logs/node1.log")
echo "  $ready"
p2p=$(sed 's/.*p2p=\([^ ]*\).*/\1/' <<<"$ready")
api=$(sed 's/.*api=\([^ ]*\).*/\1/' <<<"$ready")
for n in 2 3; do
  echo "demo: node $n: parallax join --peer $p2p"
  "$parallax" join "${common[@]}" --credentials "$logs/node$n" --peer "$p2p" --p2p-port 0 >"$logs/node$n.log" 2>&1 &
  pids+=($!)
  echo "  $(wait_ready "$logs/node$n.log")"
done

echo "demo: waiting for the scheduler to cut the model into a pipeline ..."
for _ in $(seq 200); do
  if curl -sf "http://$api/v1/cluster" | grep -q '"pipelines":\[\['; then break; fi
  sleep 0.1
done
"$parallax" status --credentials "$logs/node1" --peer "$p2p"

echo
echo "demo: streaming a chat completion through the swarm ..."
curl -sN "http://$api/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"What is a swarm?"}],"max_tokens":24,"temperature":0,"stream":true}' |
  sed -n 's/^data: .*"content":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | tr -d '\n'
echo
echo
echo "demo: the route it took (stages in layer order):"
"$parallax" status --credentials "$logs/node1" --peer "$p2p" | grep '^route' | tail -1
echo
echo "demo: shutting the swarm down"
