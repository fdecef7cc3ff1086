#!/usr/bin/env bash
# The README's main command (`make demo`): synthesizes a small model (no download needed) and
# generates from it. Until the swarm lands this is a one-stage pipeline on this machine.
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
