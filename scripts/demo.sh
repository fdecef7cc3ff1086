#!/usr/bin/env bash
# The README's main command (`make demo`): synthesizes a small model (no download needed),
# generates from it, then serves it over the OpenAI API and sends two concurrent requests.
# Until the swarm lands this is a one-stage pipeline on this machine.
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
"$parallax" model info "$model"
echo
echo "demo: generating 48 tokens (greedy) ..."
"$parallax" generate -m "$model" -p "The quick brown fox" -n 48 --temp 0
echo
echo "demo: the same prompt sampled with a seed, as JSON ..."
"$parallax" generate -m "$model" -p "The quick brown fox" -n 16 --temp 0.8 --seed 1 --json

echo
echo "demo: serving it over the OpenAI API (continuous batching) and asking two questions at once ..."
log=$(mktemp)
"$parallax" serve -m "$model" --host 127.0.0.1 --port 0 --ctx 1024 --kv-cache-mb 64 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 100); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
  if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
ask() {
  curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}],\"max_tokens\":12,\"temperature\":0}"
  echo
}
ask "What is a swarm?" &
ask "Why pipelines?" &
wait %2 %3 2>/dev/null || wait
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^parallax_(requests_total|generation_tokens_total)' || true
