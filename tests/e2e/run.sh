#!/usr/bin/env bash
# End-to-end test: the official `openai` npm client against `parallax serve` on a synthetic
# model, on an ephemeral 127.0.0.1 port. Usage: tests/e2e/run.sh [path/to/parallax]
# Exits 0 with "skipped: node/npm unavailable" only when Node.js or npm is not installed;
# every other problem (install, model, server, tests) fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
parallax="${1:-$here/../../build/parallax}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "skipped: node/npm unavailable"
  exit 0
fi
if [[ ! -x "$parallax" ]]; then
  echo "error: parallax binary not found at '$parallax' (pass its path as the first argument)" >&2
  exit 1
fi
parallax="$(cd "$(dirname "$parallax")" && pwd)/$(basename "$parallax")"  # absolute: we cd below

# Install the pinned client: npm ci from the lock file, again only when the lock changed.
cd "$here"
if [[ -f package-lock.json ]]; then
  if [[ ! -d node_modules/openai || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
else
  npm install --no-audit --no-fund --loglevel=error
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$parallax" model synth -o "$tmp/model.gguf" --seed 7 --ctx 1024 2>"$tmp/synth.log" || {
  cat "$tmp/synth.log" >&2
  exit 1
}

api_key="e2e-key"
model_name="e2e-model"
"$parallax" serve -m "$tmp/model.gguf" --host 127.0.0.1 --port 0 --api-key "$api_key" \
  --model-name "$model_name" --threads 1 --ctx 512 --max-queue 16 >"$tmp/serve.log" 2>&1 &
server_pid=$!

# The server logs the port it bound ("listening on http://127.0.0.1:PORT").
port=""
for _ in $(seq 300); do
  port="$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$tmp/serve.log" | head -1 | sed 's/.*://')" || true
  [[ -n "$port" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: parallax serve exited early:" >&2
    cat "$tmp/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "error: parallax serve did not report its port within 30 s:" >&2
  cat "$tmp/serve.log" >&2
  exit 1
fi

# Wait until the model is loaded: /health goes from 503 (loading) to 200.
PARALLAX_HEALTH_URL="http://127.0.0.1:$port/health" timeout 60 node -e '
  const url = process.env.PARALLAX_HEALTH_URL;
  (async () => {
    for (;;) {
      try { if ((await fetch(url)).status === 200) return; } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
' || {
  echo "error: /health did not report ok within 60 s:" >&2
  cat "$tmp/serve.log" >&2
  exit 1
}

status=0
PARALLAX_BASE_URL="http://127.0.0.1:$port/v1" PARALLAX_API_KEY="$api_key" PARALLAX_MODEL="$model_name" \
  timeout 300 node --test "$here/openai_client.test.mjs" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- parallax serve log ---" >&2
  tail -50 "$tmp/serve.log" >&2
fi
exit $status
