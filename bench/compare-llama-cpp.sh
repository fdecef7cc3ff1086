#!/usr/bin/env bash
# Parallax against llama.cpp on this machine, in one run: the same model files, the same thread
# count, the two engines run alternately (A B, B A, ...) so that a slow minute of a shared
# machine hits both. Prints every measurement, then per figure min / median / max of each engine
# and of the ratio Parallax / llama.cpp taken pair by pair.
#
# Nothing of llama.cpp is built or kept here: point the script at a llama.cpp that you built
# (see llama.cpp's own docs/build.md; its RPC backend enabled for the rpc mode).
set -euo pipefail

usage() {
  cat <<'TXT'
usage: bench/compare-llama-cpp.sh [options] LLAMA_CPP_DIR [MODEL.gguf ...]

LLAMA_CPP_DIR   a llama.cpp you built yourself: its checkout (binaries in build/bin), its build
                folder (binaries in bin/) or the folder holding the binaries. Needed:
                llama-bench (mode single), llama-batched-bench (mode batched), rpc-server and a
                llama-bench built with the RPC backend (mode rpc). This script builds nothing.
MODEL.gguf      models to measure (GGUF, read by both engines). Without any, the 250M-parameter
                llama of the README is synthesized as Q8_0, Q4_0, F16 and F32 into --work.

options
  --parallax BIN  the parallax binary (default: $PARALLAX, else build/parallax of this repo)
  --reps N        interleaved repetitions of every measurement (default 3)
  -t N            threads for both engines (default 2)
  -p N            prompt tokens (default 128)
  -n N            decoded tokens (default 64)
  --modes LIST    comma-separated, from: single,batched,rpc (default all three)
  --streams LIST  batched mode: concurrent streams (default 1,4,16)
  --work DIR      synthesized models and logs (default ${TMPDIR:-/tmp}/parallax-vs-llama-cpp)
  --vocab FILE    vocabulary for the synthesized models
                  (default ../shared/vocab/ggml-vocab-llama-spm.gguf next to this repo)
  -h, --help      this text

modes
  single   llama-bench -p N -n N vs `parallax bench -p N -n N --repeat 1`, every model.
           llama-bench's tg test decodes from an empty context; parallax bench decodes after
           the prompt (context N_p .. N_p+N_n), which costs it a little attention.
  batched  llama-batched-bench (-npp 32 -ntg N -npl STREAMS, aggregate S_TG) vs
           `parallax bench-serve -p 32 -n N --concurrency STREAMS` (aggregate decode once every
           stream decodes), on the first model only.
  rpc      two llama.cpp rpc-servers on 127.0.0.1 (t/2 threads each: -t where rpc-server has
           it, else OMP_THREAD_LIMIT, since older rpc-servers hard-code 4 threads) under
           `llama-bench --rpc A,B -ngl 99`, vs two Parallax stages of t/2 threads each
           (`parallax bench-swarm --stages 2`: one stream over the OpenAI API, so its figure
           includes HTTP streaming, which llama-bench's does not), on the first model only.

env     LLAMA_CPP_COMMIT  the llama.cpp commit to print when LLAMA_CPP_DIR is not a git
                          checkout and the binaries do not know their own (build_commit unknown)

Take a shared machine's CPU lock around the whole run, e.g.
  flock /tmp/cpu-heavy.lock bench/compare-llama-cpp.sh ~/llama.cpp
TXT
}

die() { echo "compare-llama-cpp: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parallax=${PARALLAX:-$repo/build/parallax}
reps=3 threads=2 prompt=128 gen=64 modes=single,batched,rpc streams=1,4,16
work=${TMPDIR:-/tmp}/parallax-vs-llama-cpp
vocab=$repo/../shared/vocab/ggml-vocab-llama-spm.gguf
llama_dir="" models=()
command_line="$0 $*"

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --parallax) parallax=${2:?--parallax needs a path}; shift 2 ;;
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    -t) threads=${2:?-t needs a number}; shift 2 ;;
    -p) prompt=${2:?-p needs a number}; shift 2 ;;
    -n) gen=${2:?-n needs a number}; shift 2 ;;
    --modes) modes=${2:?--modes needs a list}; shift 2 ;;
    --streams) streams=${2:?--streams needs a list}; shift 2 ;;
    --work) work=${2:?--work needs a folder}; shift 2 ;;
    --vocab) vocab=${2:?--vocab needs a file}; shift 2 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) if [ -z "$llama_dir" ]; then llama_dir=$1; else models+=("$1"); fi; shift ;;
  esac
done

[ -n "$llama_dir" ] || { usage >&2; die "missing LLAMA_CPP_DIR"; }
[ -d "$llama_dir" ] || die "LLAMA_CPP_DIR $llama_dir is not a folder"
for n in "$reps" "$threads" "$prompt" "$gen"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "--reps, -t, -p and -n take positive integers, not '$n'"
done
[[ $streams =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--streams takes a list like 1,4,16, not '$streams'"
for m in ${modes//,/ }; do
  case $m in single|batched|rpc) ;; *) die "unknown mode '$m' (single, batched, rpc)" ;; esac
done
has_mode() { [[ ",$modes," == *",$1,"* ]]; }
command -v jq >/dev/null || die "jq is needed to read the engines' JSON output"
[ -x "$parallax" ] || die "no parallax binary at $parallax (build it, or pass --parallax BIN)"
parallax=$(cd "$(dirname "$parallax")" && pwd)/$(basename "$parallax")

# The llama.cpp binaries: in the checkout's build/bin, a build folder's bin, or the folder itself.
llama_bin=""
for d in "$llama_dir/build/bin" "$llama_dir/bin" "$llama_dir"; do
  if [ -x "$d/llama-bench" ]; then llama_bin=$(cd "$d" && pwd); break; fi
done
[ -n "$llama_bin" ] || die "no llama-bench under $llama_dir (looked in build/bin, bin and the folder itself); build llama.cpp first (its docs/build.md)"
need_llama() { [ -x "$llama_bin/$1" ] || die "mode $2 needs $llama_bin/$1; build that target of llama.cpp or leave the mode out (--modes)"; }
has_mode batched && need_llama llama-batched-bench batched
has_mode rpc && need_llama rpc-server rpc
if has_mode rpc && ! "$llama_bin/llama-bench" --help 2>&1 | grep -q -- '--rpc'; then
  die "mode rpc: this llama-bench was built without the RPC backend; rebuild llama.cpp with it or leave the mode out"
fi

mkdir -p "$work/logs"
logs=$work/logs

# Runs a command with its stdout in OUT and its stderr in OUT.err; on failure says which and
# shows the end of both.
run_logged() {
  local out=$1; shift
  if ! "$@" >"$out" 2>"$out.err"; then
    echo "compare-llama-cpp: failed: $*" >&2
    tail -n 20 "$out" "$out.err" >&2
    die "logs: $out, $out.err"
  fi
}

if [ ${#models[@]} -eq 0 ]; then
  [ -f "$vocab" ] || die "no vocabulary at $vocab to synthesize the models with (pass --vocab FILE or MODEL.gguf files)"
  for type in q8_0 q4_0 f16 f32; do
    out=$work/bench-$type.gguf
    if [ ! -f "$out" ]; then
      echo "synthesizing $out"
      run_logged "$logs/synth-$type.log" "$parallax" model synth -o "$out.tmp" --arch llama --layers 16 --embd 1024 \
        --heads 16 --kv-heads 4 --ff 2816 --ctx 2048 --type "$type" --seed 1 --vocab "$vocab"
      mv "$out.tmp" "$out"
    fi
    models+=("$out")
  done
fi
for m in "${models[@]}"; do [ -f "$m" ] || die "no model file $m"; done

# The llama.cpp commit: the checkout's, else $LLAMA_CPP_COMMIT, else what llama-bench says below.
llama_commit=${LLAMA_CPP_COMMIT:-}
if [ -z "$llama_commit" ] && git -C "$llama_dir" rev-parse --git-dir >/dev/null 2>&1; then
  llama_commit=$(git -C "$llama_dir" rev-parse HEAD)
fi
parallax_commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

results=$work/results.tsv  # mode  model  figure  rep  engine  tok/s
: >"$results"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; printf '  %-8s %-16s %-10s rep %s  %-9s %10.1f tok/s\n' "$@"; }

# A figure that came back empty or non-numeric means the output format was not what we read.
check_number() {
  [[ $1 =~ ^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] || die "could not read a tokens/s figure from $2 (got '$1')"
}

llama_single() {  # model rep [extra llama-bench args...]
  local model=$1 rep=$2 mode=$3; shift 3
  local name=${model##*/}
  local log=$logs/$mode-llama-${name%.gguf}-$rep.json
  run_logged "$log" "$llama_bin/llama-bench" -m "$model" -t "$threads" -p "$prompt" -n "$gen" -r 1 -o json "$@"
  local pp tg commit
  pp=$(jq -r ".[] | select(.n_prompt == $prompt and .n_gen == 0) | .avg_ts" "$log")
  tg=$(jq -r ".[] | select(.n_prompt == 0 and .n_gen == $gen) | .avg_ts" "$log")
  commit=$(jq -r '.[0].build_commit' "$log")
  if [ -z "$llama_commit" ] && [ "$commit" != unknown ]; then llama_commit=$commit; fi
  check_number "$pp" "$log"; check_number "$tg" "$log"
  record "$mode" "$name" "pp$prompt" "$rep" llama.cpp "$pp"
  record "$mode" "$name" "tg$gen" "$rep" llama.cpp "$tg"
}

parallax_single() {
  local model=$1 rep=$2 name=${1##*/}
  local log=$logs/single-parallax-${name%.gguf}-$rep.json
  run_logged "$log" "$parallax" bench -m "$model" -t "$threads" -p "$prompt" -n "$gen" --repeat 1 --json
  local pp tg
  pp=$(jq -r .prefill_tps "$log"); tg=$(jq -r .decode_tps "$log")
  check_number "$pp" "$log"; check_number "$tg" "$log"
  record single "$name" "pp$prompt" "$rep" Parallax "$pp"
  record single "$name" "tg$gen" "$rep" Parallax "$tg"
}

batch_prompt=32
llama_batched() {
  local model=$1 rep=$2 name=${1##*/}
  local log=$logs/batched-llama-${name%.gguf}-$rep.jsonl
  local max_streams ctx
  max_streams=$(tr ',' '\n' <<<"$streams" | sort -n | tail -n 1)
  ctx=$((max_streams * (batch_prompt + gen) + 16))
  run_logged "$log.out" "$llama_bin/llama-batched-bench" -m "$model" -t "$threads" -c "$ctx" -b 2048 -ub 512 \
    -npp "$batch_prompt" -ntg "$gen" -npl "$streams" --output-format jsonl
  grep -h '^{"n_kv_max"' "$log.out" "$log.out.err" >"$log" || true
  local s v
  for s in ${streams//,/ }; do
    v=$(jq -r "select(.pl == $s) | .speed_tg" "$log")
    check_number "$v" "$log"
    record batched "$name" "$s-streams" "$rep" llama.cpp "$v"
  done
}

parallax_batched() {
  local model=$1 rep=$2 name=${1##*/}
  local log=$logs/batched-parallax-${name%.gguf}-$rep.json
  local s v conc=()
  for s in ${streams//,/ }; do conc+=(--concurrency "$s"); done
  # --long-prompt 16: bench-serve's TTFT part is not compared here, keep it short.
  run_logged "$log" "$parallax" bench-serve -m "$model" -t "$threads" -p "$batch_prompt" -n "$gen" \
    --long-prompt 16 --json "${conc[@]}"
  for s in ${streams//,/ }; do
    v=$(jq -r ".decode[] | select(.streams == $s) | .tokens_per_second" "$log")
    check_number "$v" "$log"
    record batched "$name" "$s-streams" "$rep" Parallax "$v"
  done
}

# Two rpc-servers on free loopback ports, stopped when the script ends.
rpc_pids=()
stop_rpc() {
  local pid
  for pid in "${rpc_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${rpc_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rpc_pids=()
}
trap stop_rpc EXIT
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start_rpc_servers() {
  local per_server=$(( threads / 2 > 0 ? threads / 2 : 1 )) port=50152 i tries
  local thread_args=() env_args=()
  if "$llama_bin/rpc-server" --help 2>&1 | grep -q -- '--threads'; then
    thread_args=(-t "$per_server")
  else
    env_args=(OMP_THREAD_LIMIT="$per_server")
  fi
  rpc_endpoints=""
  for i in 1 2; do
    while port_in_use "$port"; do port=$((port + 1)); [ "$port" -lt 50400 ] || die "no free port for rpc-server"; done
    env "${env_args[@]}" "$llama_bin/rpc-server" -H 127.0.0.1 -p "$port" "${thread_args[@]}" \
      >"$logs/rpc-server-$i.log" 2>&1 &
    rpc_pids+=($!)
    tries=0
    until port_in_use "$port"; do
      kill -0 "${rpc_pids[-1]}" 2>/dev/null || { tail -n 20 "$logs/rpc-server-$i.log" >&2; die "rpc-server $i exited"; }
      tries=$((tries + 1)); [ "$tries" -lt 100 ] || die "rpc-server $i did not listen on 127.0.0.1:$port within 20 s"
      sleep 0.2
    done
    rpc_endpoints+="${rpc_endpoints:+,}127.0.0.1:$port"
    port=$((port + 1))
  done
  rpc_threads_note="${thread_args[*]:-${env_args[*]}}"
}

# Fresh rpc-servers for every llama.cpp run, none running while Parallax runs.
llama_rpc() {
  start_rpc_servers
  llama_single "$1" "$2" rpc --rpc "$rpc_endpoints" -ngl 99
  stop_rpc
}

parallax_rpc() {
  local model=$1 rep=$2 name=${1##*/}
  local log=$logs/rpc-parallax-${name%.gguf}-$rep.json
  run_logged "$log" "$parallax" bench-swarm -m "$model" -t "$threads" --stages 2 -p "$prompt" -n "$gen" --json
  local ttft tg
  ttft=$(jq -r '.results[] | select(.setup == "2 stages") | .ttft_s' "$log")
  tg=$(jq -r '.results[] | select(.setup == "2 stages") | .decode_tps' "$log")
  check_number "$ttft" "$log"; check_number "$tg" "$log"
  record rpc "$name" "pp$prompt" "$rep" Parallax "$(awk -v p="$prompt" -v t="$ttft" 'BEGIN { print p / t }')"
  record rpc "$name" "tg$gen" "$rep" Parallax "$tg"
}

echo "date        $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine     $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
echo "parallax    $parallax (repo commit $parallax_commit)"
echo "llama.cpp   $llama_bin"
echo "command     $command_line"
echo "threads $threads, prompt $prompt, decode $gen, $reps interleaved repetitions, modes $modes"
echo

# Alternate which engine goes first, so neither always gets the calmer half of a pair.
for rep in $(seq 1 "$reps"); do
  echo "repetition $rep / $reps"
  if has_mode single; then
    for m in "${models[@]}"; do
      if [ $((rep % 2)) -eq 1 ]; then llama_single "$m" "$rep" single; parallax_single "$m" "$rep"
      else parallax_single "$m" "$rep"; llama_single "$m" "$rep" single; fi
    done
  fi
  if has_mode batched; then
    if [ $((rep % 2)) -eq 1 ]; then llama_batched "${models[0]}" "$rep"; parallax_batched "${models[0]}" "$rep"
    else parallax_batched "${models[0]}" "$rep"; llama_batched "${models[0]}" "$rep"; fi
  fi
  if has_mode rpc; then
    if [ $((rep % 2)) -eq 1 ]; then llama_rpc "${models[0]}" "$rep"; parallax_rpc "${models[0]}" "$rep"
    else parallax_rpc "${models[0]}" "$rep"; llama_rpc "${models[0]}" "$rep"; fi
  fi
done

echo
echo "llama.cpp commit ${llama_commit:-unknown}"
if has_mode rpc; then echo "rpc-servers: $rpc_threads_note each"; fi
echo
# min / median / max of each engine, and of Parallax / llama.cpp pair by pair (same mode,
# model, figure and repetition).
awk -F'\t' '
  function stats(list,   n, a, i, j, t, med) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return sprintf(fmt, a[1]) " / " sprintf(fmt, med) " / " sprintf(fmt, a[n])
  }
  {
    key = $1 SUBSEP $2 SUBSEP $3
    if (!(key in seen)) { seen[key] = 1; order[++keys] = key }
    vals[key, $5] = vals[key, $5] " " $6
    tps[key, $4, $5] = $6
    reps[key, $4] = 1
  }
  END {
    print "| mode | model | figure | llama.cpp tok/s (min / median / max) | Parallax tok/s (min / median / max) | Parallax / llama.cpp (min / median / max) |"
    print "|---|---|---|---|---|---|"
    for (k = 1; k <= keys; k++) {
      key = order[k]; split(key, f, SUBSEP); ratios = ""
      for (rk in reps) {
        split(rk, r, SUBSEP)
        if (r[1] SUBSEP r[2] SUBSEP r[3] != key) continue
        l = tps[key, r[4], "llama.cpp"]; p = tps[key, r[4], "Parallax"]
        if (l > 0 && p != "") ratios = ratios " " p / l
      }
      fmt = "%.1f"; lv = stats(vals[key, "llama.cpp"]); pv = stats(vals[key, "Parallax"])
      fmt = "%.2f"; rv = stats(ratios)
      gsub(/ \/ /, "x / ", rv)
      printf "| %s | %s | %s | %s | %s | %sx |\n", f[1], f[2], f[3], lv, pv, rv
    }
  }' "$results"
echo
echo "raw figures: $results; logs: $logs"
