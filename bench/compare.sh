#!/usr/bin/env bash
# Same model, batch and thread count in resnet.cpp (`resnet bench`), PyTorch
# (bench/compare_torch.py, NCHW and channels_last, the better one counts) and ONNX Runtime
# (bench/compare_ort.js on an ONNX file of the same model), interleaved round-robin (a change of
# machine load hits all of them alike), best of --reps runs each; prints a Markdown table with
# the ratios the performance issue asks for:
#   training img/s vs PyTorch (tutorial ResNet-50 @64 and ResNet-50 @224, batch 32),
#   training peak RSS vs PyTorch, inference img/s vs ONNX Runtime (batch 1 and 32, @64 and @224);
#   and (serve64) serving: 1, 2 and 4 clients sending batch-1 requests at once to the tutorial
#   ResNet-50 @64 (`resnet bench --mode serve`, bench/compare_ort_serve.js for ORT), throughput
#   and latency, each client's calls on max(1, threads / clients) intra-op threads.
# The ONNX file is the PyTorch model exported with torch.onnx.export (opset 13): the same
# architecture, and ORT's own graph optimizations (BN folding, fusions) apply to it.
# --isa avx2 measures what an AVX2 machine gets, on any x86 machine: resnet.cpp and PyTorch run
# with ONEDNN_MAX_CPU_ISA=AVX2 (resnet.cpp's own kernels follow it; PyTorch's convolutions run on
# the same system oneDNN), PyTorch also with ATEN_CPU_CAPABILITY=avx2 and OPENBLAS_CORETYPE=Haswell.
# onnxruntime-node has no such switch: on a CPU with AVX-512 its column is marked "not capped".
# The table's first lines say which ISA each side ran.
#
# Usage: bench/compare.sh [--only train64,train224,infer64,infer224,serve64] [--threads N] [--reps R]
#                         [--steps K] [--steps224 K] [--isa native|avx2] [--build DIR]
#                         [--baseline DIR] [--out FILE.md]
# --baseline DIR: the build folder of an earlier resnet.cpp (say main before a change), run in the
# same interleaved rounds under the same cap; the table adds its img/s and the speed-up over it.
# Needs /usr/bin/python3 with torch/torchvision and onnxruntime-node under .deps/ort
# (scripts/setup.sh). The @224 training runs take minutes on 2 cores: use --only/--steps224.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
only="train64,train224,infer64,infer224,serve64"
threads="$(nproc)"
reps=3
steps=10
steps224=3
build="$root/build"
out=""
baseline=""
isa=native
while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --steps224) steps224="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --isa) isa="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    -h|--help) sed -n 2,27p "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$isa" in
  native) cap_r=(); cap_t=() ;;
  avx2)
    cap_r=(env ONEDNN_MAX_CPU_ISA=AVX2)
    cap_t=(env ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell) ;;
  *) echo "compare.sh: --isa must be native or avx2, got '$isa'" >&2; exit 2 ;;
esac
resnet="$build/resnet"
if [[ -n "$baseline" && ! -x "$baseline/resnet" ]]; then
  echo "compare.sh: $baseline/resnet not built" >&2; exit 2
fi
[[ -x "$resnet" ]] || { echo "compare.sh: $resnet not built (cmake --build $build --target resnet_cli)" >&2; exit 2; }
py=/usr/bin/python3
have_ort=1
[[ -d "$root/.deps/ort/node_modules/onnxruntime-node" ]] && command -v node >/dev/null || have_ort=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# field FILE KEY: a value from the JSON object a run printed on stdout
field() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# interleaved NAME1 CMD1 NAME2 CMD2 ...: runs the commands round-robin, --reps rounds, so that a
# change of machine load hits all of them alike; sets best_<NAME> (max img/s) and rss_<NAME>
# (min peak RSS MB), "nan" when a command failed.
interleaved() {
  local -a names=() cmds=()
  while [[ $# -gt 0 ]]; do names+=("$1"); cmds+=("$2"); shift 2; done
  local i k v m
  for k in "${!names[@]}"; do
    printf -v "best_${names[k]}" '%s' 0; printf -v "rss_${names[k]}" '%s' 1e12
  done
  for ((i = 0; i < reps; ++i)); do
    for k in "${!names[@]}"; do
      local bvar="best_${names[k]}" rvar="rss_${names[k]}"
      [[ ${!bvar} == nan ]] && continue
      if ! eval "${cmds[k]}" > "$tmp/run.json" 2> "$tmp/run.err"; then
        echo "compare.sh: failed: ${cmds[k]} ($(tail -1 "$tmp/run.err"))" >&2
        printf -v "$bvar" '%s' nan; printf -v "$rvar" '%s' nan; continue
      fi
      v=$(field "$tmp/run.json" img_per_s); m=$(field "$tmp/run.json" peak_rss_mb)
      printf -v "$bvar" '%s' "$("$py" -c "print(max(${!bvar}, $v))")"
      printf -v "$rvar" '%s' "$("$py" -c "print(min(${!rvar}, $m))")"
    done
  done
}

ratio() { "$py" -c "import math; a,b=float('$1'),float('$2'); print('n/a' if math.isnan(a) or math.isnan(b) or b == 0 else f'{a/b:.2f}x')"; }
num() { "$py" -c "import math; a=float('$1'); print('n/a' if math.isnan(a) else f'{a:.${2:-1}f}')"; }

onnx_file() {  # model size -> path of an ONNX file exported from PyTorch
  local model=$1 size=$2 f="$tmp/$1_$2.onnx"
  if [[ ! -f "$f" ]]; then
    "$py" "$root/bench/compare_torch.py" --model "$model" --size "$size" --export "$f" 2>/dev/null
  fi
  echo "$f"
}

rows=()
header="| run | resnet.cpp img/s | PyTorch img/s (NCHW / ch-last) | ORT img/s | resnet.cpp / PyTorch | resnet.cpp / ORT | peak RSS resnet.cpp / PyTorch MB | RSS ratio | baseline img/s | vs baseline |"
load_before="$(cut -d" " -f1-3 /proc/loadavg)"
echo "load before: $(uptime)" >&2

q() { printf '%q ' "$@"; }
# r ARGS...: a resnet.cpp command line; t ARGS...: a PyTorch one; both under the --isa cap.
r() { q "${cap_r[@]}" "$resnet" "$@"; }
# b ARGS...: the --baseline resnet.cpp (nothing without --baseline).
b() { [[ -n "$baseline" ]] && q "${cap_r[@]}" "$baseline/resnet" "$@"; }

t() { q "${cap_t[@]}" "$py" "$root/bench/compare_torch.py" "$@"; }
# Which ISA each side runs (from a short run of each), for the table's header.
isa_line() {
  local ri ti oi
  ri=$(eval "$(r bench --model resnet20 --input-shape 8,8,3 --classes 2 --batch 1 --mode infer --steps 1 --warmup 0 --threads 1 --json)" 2>/dev/null |
    "$py" -c 'import json,sys; j=json.load(sys.stdin); print(j["kernel_isa"] + " (oneDNN " + j["onednn_isa"] + ")")' || echo "?")
  ti=$(eval "$(t --model tutorial --mode infer --batch 1 --size 64 --threads 1 --layout nchw --steps 1 --warmup 0)" 2>/dev/null |
    "$py" -c 'import json,sys; j=json.load(sys.stdin); print("ATen " + j["aten_isa"] + ", oneDNN " + j["onednn_max_isa"])' || echo "?")
  if grep -qw avx512f /proc/cpuinfo; then cpu=avx512; else cpu=avx2; fi
  if [[ $isa == avx2 && $cpu == avx512 ]]; then oi="native $cpu: not capped (onnxruntime-node has no ISA switch)"; else oi="native $cpu"; fi
  echo "ISA: resnet.cpp $ri; PyTorch $ti; ORT $oi (--isa $isa)"
}

train_row() {  # label torch_model zoo size classes steps
  local label=$1 tm=$2 zoo=$3 size=$4 classes=$5 k=$6
  local -a base=()
  best_bl=nan
  [[ -n "$baseline" ]] && base=(bl "$(b bench --model "$zoo" --input-shape "$size,$size,3" --classes "$classes" --batch 32 --mode train --steps "$k" --warmup 1 --threads "$threads" --json)")
  interleaved "${base[@]}" \
    r "$(r bench --model "$zoo" --input-shape "$size,$size,3" --classes "$classes" --batch 32 --mode train --steps "$k" --warmup 1 --threads "$threads" --json)" \
    rr "$(r bench --model "$zoo" --input-shape "$size,$size,3" --classes "$classes" --batch 32 --mode train --steps "$k" --warmup 1 --threads "$threads" --recompute --json)" \
    tn "$(t --model "$tm" --mode train --batch 32 --size "$size" --threads "$threads" --layout nchw --steps "$k" --warmup 1)" \
    tc "$(t --model "$tm" --mode train --batch 32 --size "$size" --threads "$threads" --layout channels_last --steps "$k" --warmup 1)"
  local tb tbm
  if "$py" -c "import sys; sys.exit(0 if float('$best_tn') >= float('$best_tc') else 1)"; then tb=$best_tn; tbm=$rss_tn; else tb=$best_tc; tbm=$rss_tc; fi
  rows+=("| train $label b32 | $(num "$best_r" 2) | $(num "$best_tn" 2) / $(num "$best_tc" 2) | - | $(ratio "$best_r" "$tb") | - | $(num "$rss_r" 0) / $(num "$tbm" 0) | $(ratio "$rss_r" "$tbm") | $(num "$best_bl" 2) | $(ratio "$best_r" "$best_bl") |")
  echo "${rows[-1]}" >&2
  rows+=("| train $label b32 --recompute | $(num "$best_rr" 2) | $(num "$best_tn" 2) / $(num "$best_tc" 2) | - | $(ratio "$best_rr" "$tb") | - | $(num "$rss_rr" 0) / $(num "$tbm" 0) | $(ratio "$rss_rr" "$tbm") | - | - |")
  echo "${rows[-1]}" >&2
}

infer_row() {  # label torch_model zoo size classes batch steps
  local label=$1 tm=$2 zoo=$3 size=$4 classes=$5 b=$6 k=$7
  local -a ort=()
  [[ $have_ort == 1 ]] && ort=(o "$(q node "$root/bench/compare_ort.js" "$(onnx_file "$tm" "$size")" --batch "$b" --size "$size" --threads "$threads" --steps "$k" --warmup 2)")
  best_o=nan
  best_bl=nan
  local -a base=()
  [[ -n "$baseline" ]] && base=(bl "$(b bench --model "$zoo" --input-shape "$size,$size,3" --classes "$classes" --batch "$b" --mode infer --steps "$k" --warmup 2 --threads "$threads" --json)")
  interleaved "${base[@]}" \
    r "$(r bench --model "$zoo" --input-shape "$size,$size,3" --classes "$classes" --batch "$b" --mode infer --steps "$k" --warmup 2 --threads "$threads" --json)" \
    tn "$(t --model "$tm" --mode infer --batch "$b" --size "$size" --threads "$threads" --layout nchw --steps "$k" --warmup 2)" \
    tc "$(t --model "$tm" --mode infer --batch "$b" --size "$size" --threads "$threads" --layout channels_last --steps "$k" --warmup 2)" \
    "${ort[@]}"
  local tb; tb=$("$py" -c "print(max(float('$best_tn'), float('$best_tc')))")
  rows+=("| infer $label b$b | $(num "$best_r" 1) | $(num "$best_tn" 1) / $(num "$best_tc" 1) | $(num "$best_o" 1) | $(ratio "$best_r" "$tb") | $(ratio "$best_r" "$best_o") | - | - | $(num "$best_bl" 1) | $(ratio "$best_r" "$best_bl") |")
  echo "${rows[-1]}" >&2
}

# serve_row CLIENTS REQUESTS: resnet.cpp and ORT serving the tutorial ResNet-50 @64 to CLIENTS
# concurrent batch-1 callers, interleaved, --reps rounds. Each side's row is its best-throughput
# run; p99/mean is the lowest of the rounds (both are "best of R").
serve_rows=()
declare -A serve_one=()
serve_row() {
  local c=$1 k=$2 i side cmd
  local -A cmds=([r]="$(r bench --model resnet50-tutorial --input-shape 64,64,3 --classes 6 --mode serve --clients "$c" --steps "$k" --warmup 2 --threads "$threads" --json)")
  [[ $have_ort == 1 ]] && cmds[o]="$(q node "$root/bench/compare_ort_serve.js" "$(onnx_file tutorial 64)" --clients "$c" --size 64 --threads "$threads" --steps "$k" --warmup 2)"
  local -A best=() ratio=()
  for ((i = 0; i < reps; ++i)); do
    for side in r o; do
      [[ -n "${cmds[$side]:-}" ]] || continue
      if ! eval "${cmds[$side]}" > "$tmp/serve.json" 2> "$tmp/serve.err"; then
        echo "compare.sh: failed: ${cmds[$side]} ($(tail -1 "$tmp/serve.err"))" >&2; continue
      fi
      if [[ -z "${best[$side]:-}" ]] || "$py" -c "import json,sys; sys.exit(0 if json.load(open('$tmp/serve.json'))['img_per_s'] > json.loads(sys.argv[1])['img_per_s'] else 1)" "${best[$side]}"; then
        best[$side]="$(cat "$tmp/serve.json")"
      fi
      local pm; pm=$(field "$tmp/serve.json" p99_over_mean)
      ratio[$side]=$("$py" -c "print(min(float('${ratio[$side]:-inf}'), $pm))")
    done
  done
  sv() { [[ -n "${best[$1]:-}" ]] && "$py" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "${best[$1]}" "$2" || echo nan; }
  local rt ot; rt=$(sv r img_per_s); ot=$(sv o img_per_s)
  [[ $c == 1 ]] && { serve_one[r]=$rt; serve_one[o]=$ot; }
  serve_rows+=("| $c | $(sv r intra_op_threads) | $(num "$rt" 1) | $(num "$(sv r latency_ms_p50)" 1) / $(num "$(sv r latency_ms_p99)" 1) / $(num "$(sv r latency_ms_mean)" 1) | $(num "${ratio[r]:-nan}" 2) | $(num "$ot" 1) | $(num "$(sv o latency_ms_p50)" 1) / $(num "$(sv o latency_ms_p99)" 1) / $(num "$(sv o latency_ms_mean)" 1) | $(num "${ratio[o]:-nan}" 2) | $(ratio "$rt" "$ot") | $(ratio "$rt" "${serve_one[r]:-nan}") | $(ratio "$ot" "${serve_one[o]:-nan}") |")
  echo "${serve_rows[-1]}" >&2
}

isa_info="$(isa_line)"
echo "$isa_info" >&2
IFS=, read -ra parts <<< "$only"
for p in "${parts[@]}"; do
  case "$p" in
    train64) train_row "tutorial@64" tutorial resnet50-tutorial 64 6 "$steps" ;;
    train224) train_row "ResNet-50@224" resnet50 resnet50 224 1000 "$steps224" ;;
    infer64)
      infer_row "tutorial@64" tutorial resnet50-tutorial 64 6 1 $((steps * 5))
      infer_row "tutorial@64" tutorial resnet50-tutorial 64 6 32 "$steps" ;;
    infer224)
      infer_row "ResNet-50@224" resnet50 resnet50 224 1000 1 "$steps"
      infer_row "ResNet-50@224" resnet50 resnet50 224 1000 32 "$steps224" ;;
    serve64) for c in 1 2 4; do serve_row "$c" $((steps * 10)); done ;;
    *) echo "compare.sh: unknown run '$p' (train64, train224, infer64, infer224, serve64)" >&2; exit 2 ;;
  esac
done
echo "load after: $(uptime)" >&2

{
  echo "threads $threads, best of $reps runs each, load average $load_before at the start and $(cut -d" " -f1-3 /proc/loadavg) at the end, $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo
  echo "$isa_info"
  echo
  if [[ ${#rows[@]} -gt 0 ]]; then
    echo "$header"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
  fi
  if [[ ${#serve_rows[@]} -gt 0 ]]; then
    [[ ${#rows[@]} -gt 0 ]] && echo
    echo "serving the tutorial ResNet-50 @64, batch-1 requests, $((steps * 10)) per client (ORT: one session per client thread, see bench/compare_ort_serve.js)"
    echo
    echo "| clients | intra-op threads | resnet.cpp img/s | p50 / p99 / mean ms | p99/mean | ORT img/s | ORT p50 / p99 / mean ms | ORT p99/mean | resnet.cpp / ORT | resnet.cpp vs 1 client | ORT vs 1 client |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${serve_rows[@]}"
  fi
} | tee ${out:+"$out"}
