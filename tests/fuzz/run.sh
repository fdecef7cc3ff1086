#!/usr/bin/env bash
# Runs every fuzz entry for SECONDS over its corpus in BUILD_DIR/corpus/<entry>/ (seeded by
# fuzz_seed_corpus, grown by libFuzzer across runs); `make fuzz` calls it for a short smoke run.
# Fails on the first entry that finds a crash, leak, UB report, timeout or over-large allocation;
# the input that did it is BUILD_DIR/artifacts/<entry>-crash-<hash> (rerun: BUILD_DIR/tests/fuzz/<entry> FILE).
#   tests/fuzz/run.sh BUILD_DIR SECONDS [ENTRY...] [-- LIBFUZZER_FLAGS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [ENTRY...] [-- LIBFUZZER_FLAGS...]}
seconds=${2:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [ENTRY...] [-- LIBFUZZER_FLAGS...]}
shift 2
entries=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do entries+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
extra=("$@")

# Each entry's largest input: the formats' own limits or a little beyond them (an announcement
# over 4096 bytes is refused by its length, a longer input only slows the search down).
declare -A max_len=(
  [gguf_fuzz]=65536 [safetensors_fuzz]=4096 [wire_codec_fuzz]=16384
  [announcement_fuzz]=4200 [openai_request_fuzz]=16384)
declare -A dict=([announcement_fuzz]=tests/fuzz/announcement.dict [openai_request_fuzz]=tests/fuzz/openai.dict)
[ ${#entries[@]} -gt 0 ] || entries=(gguf_fuzz safetensors_fuzz wire_codec_fuzz announcement_fuzz openai_request_fuzz)

"$build/tests/fuzz/fuzz_seed_corpus" "$build/corpus"
mkdir -p "$build/artifacts" "$build/logs"
for entry in "${entries[@]}"; do
  [ -n "${max_len[$entry]:-}" ] || { echo "run.sh: unknown entry $entry" >&2; exit 2; }
  # One allocation over 512 MiB from an input this small is an unchecked count: a failure.
  flags=(-max_total_time="$seconds" -max_len="${max_len[$entry]}" -timeout=10 -rss_limit_mb=2048
         -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$build/artifacts/$entry-")
  [ -z "${dict[$entry]:-}" ] || flags+=(-dict="${dict[$entry]}")
  log="$build/logs/$entry.log"
  echo "== $entry: ${seconds}s (log: $log)"
  if "$build/tests/fuzz/$entry" "${flags[@]}" "${extra[@]}" "$build/corpus/$entry" >"$log" 2>&1; then
    grep -E '#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done' "$log" || true
  else
    status=$?
    tail -n 80 "$log"
    echo "run.sh: $entry failed (exit $status); the input is in $build/artifacts/" >&2
    exit "$status"
  fi
done
