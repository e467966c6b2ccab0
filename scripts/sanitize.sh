#!/usr/bin/env bash
# ASan + UBSan build (clang, build-san/), the unit tests and conformance under it, then each libFuzzer target
# (tests/fuzz) for a bounded time on seed corpora made from the ONNX node tests. Exits non-zero on any sanitizer
# report, test failure or fuzzer crash. docs/fuzzing.md has the details and the recorded long runs.
#
#   bash scripts/sanitize.sh                   # build, ctest, 60 s per fuzzer
#   KILN_FUZZ_SECONDS=600 bash scripts/sanitize.sh
#   KILN_SANITIZE_SKIP_TESTS=1 bash scripts/sanitize.sh   # fuzzers only
#   KILN_FUZZ_SECONDS=0 bash scripts/sanitize.sh          # build and tests only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${KILN_SANITIZE_BUILD_DIR:-build-san}
SECONDS_PER_FUZZER=${KILN_FUZZ_SECONDS:-60}
JOBS=${KILN_JOBS:-$(nproc)}
NODE_TESTS=/usr/share/libonnx-testdata/data/node
FUZZERS=(fuzz_onnx_import fuzz_engine_file fuzz_tensor_io)
start=$(date +%s)
say() { echo "[sanitize $(($(date +%s) - start))s] $*"; }

# halt_on_error + abort: the first report fails the run. Leak checking stays on: kiln owns its memory through
# RAII, so a leak is a bug (libFuzzer checks leaks per input as well).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:print_stacktrace=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
# Symbolized stacks (a clang-NN runtime looks in /usr/lib/llvm-NN/bin, where Debian may not put it).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
fi

# Compiler: CC/CXX if set, else Debian's clang (14 in bookworm, what scripts/setup.sh installs), so CI here and on a
# fresh machine build with the same compiler.
if [ -z "${CXX:-}" ]; then
  CC=clang CXX=clang++
fi
export CC CXX
say "configure $BUILD ($CXX, -DKILN_SANITIZE=ON -DKILN_FUZZ=ON -DKILN_CUDA=OFF)"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON -DKILN_FUZZ=ON \
  -DKILN_CUDA=OFF "${launcher[@]}" >/dev/null
say "build (-j$JOBS)"
cmake --build "$BUILD" -j"$JOBS" >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }

if [ "${KILN_SANITIZE_SKIP_TESTS:-0}" != 1 ]; then
  say "ctest under ASan/UBSan"
  ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 1800 | tail -15
  say "ctest passed"
fi
[ "$SECONDS_PER_FUZZER" -gt 0 ] || { say "done (no fuzzing)"; exit 0; }

# ---- seed corpora (generated, not committed) ----
FUZZ=$BUILD/fuzz
SEEDS=$FUZZ/seeds
rm -rf "$SEEDS"
mkdir -p "$SEEDS"/{fuzz_onnx_import,fuzz_engine_file,fuzz_tensor_io}
say "seed corpora from $NODE_TESTS"
n=0
for m in "$NODE_TESTS"/*/model.onnx; do
  [ "$(stat -c %s "$m")" -le 65536 ] || continue
  cp "$m" "$SEEDS/fuzz_onnx_import/$(basename "$(dirname "$m")").onnx"
  n=$((n + 1))
done
# Tensor files: the first byte picks the reader (0: .npy, 1: .pb).
k=0
for pb in "$NODE_TESTS"/*/test_data_set_0/*.pb; do
  [ "$(stat -c %s "$pb")" -le 16384 ] || continue
  k=$((k + 1))
  [ $((k % 4)) = 0 ] || continue  # every 4th: ~700 files cover every dtype and rank the tests use
  d=$(basename "$(dirname "$(dirname "$pb")")")
  { printf '\x01'; cat "$pb"; } >"$SEEDS/fuzz_tensor_io/$d.$(basename "$pb")"
done
python3 "$ROOT/tests/fuzz/make_npy_seeds.py" "$SEEDS/fuzz_tensor_io"
# Engine files: small node-test models built by the sanitized CLI (its kernels are the ones the fuzzer loads).
for t in test_add test_relu test_sigmoid test_matmul_2d test_gemm_default_matrix_bias test_conv_with_strides_padding \
         test_maxpool_2d_pads test_averagepool_2d_default test_reshape_reduced_dims test_concat_2d_axis_0 \
         test_transpose_all_permutations_1 test_slice test_gather_0 test_resize_upsample_scales_nearest \
         test_instancenorm_example test_softmax_axis_1 test_reduce_mean_default_axes_keepdims_example test_where_example \
         test_pad test_depthtospace_crd_mode_example test_expand_dim_changed test_cast_FLOAT_to_FLOAT16 test_split_equal_parts_1d \
         test_unsqueeze_axis_0 test_elu test_leakyrelu test_range_float_type_positive_delta test_tile test_globalaveragepool; do
  [ -f "$NODE_TESTS/$t/model.onnx" ] || continue
  "$BUILD/kiln" exec --onnx="$NODE_TESTS/$t/model.onnx" --saveEngine="$SEEDS/fuzz_engine_file/$t.kiln" \
    --iterations=1 --warmUp=0 --duration=0 --threads=1 >/dev/null 2>&1 || rm -f "$SEEDS/fuzz_engine_file/$t.kiln"
done
say "seeds: $n models, $(ls "$SEEDS/fuzz_tensor_io" | wc -l) tensor files, $(ls "$SEEDS/fuzz_engine_file" | wc -l) engine files"
[ "$(ls "$SEEDS/fuzz_engine_file" | wc -l)" -ge 5 ] || { echo "sanitize: too few engine seeds" >&2; exit 1; }

# ---- fuzzing ----
# Memory: inputs may declare any size; kiln must refuse what it cannot hold with a kiln::Error. libFuzzer treats
# a single malloc over 1 GiB or an RSS over 2 GiB as a crash.
# The targets write each input to a temp file (the readers take paths): keep that in memory when possible.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
fail=0
summary=()
for f in "${FUZZERS[@]}"; do
  corpus=$FUZZ/corpus/$f
  artifacts=$FUZZ/artifacts/$f
  mkdir -p "$corpus" "$artifacts"
  # Known reproducers first (tests/fuzz/regressions/<target>/): each must now pass.
  if compgen -G "$ROOT/tests/fuzz/regressions/$f/*" >/dev/null; then
    say "$f: regression inputs"
    if ! "$BUILD/$f" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=60 "$ROOT"/tests/fuzz/regressions/$f/* \
        >"$FUZZ/$f.regressions.log" 2>&1; then
      grep -E "ERROR|error|exception|SUMMARY|Running:" "$FUZZ/$f.regressions.log" | tail -20
      summary+=("$f: a regression input fails")
      fail=1
    fi
  fi
  say "$f: fuzzing ${SECONDS_PER_FUZZER}s"
  log=$FUZZ/$f.log
  rc=0
  "$BUILD/$f" "$corpus" "$SEEDS/$f" -max_total_time="$SECONDS_PER_FUZZER" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -timeout=60 -max_len=262144 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1 || true)
  if [ -z "$runs" ]; then runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || echo "?"); fi
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  if [ "$rc" != 0 ]; then
    grep -B2 -A30 -E "==ERROR|runtime error|non-kiln exception|deadly signal|out-of-memory|timeout" "$log" | head -60
    summary+=("$f: CRASH after $runs executions (rc $rc); reproducer in $artifacts/, log $log")
    fail=1
  else
    summary+=("$f: $runs executions in ${SECONDS_PER_FUZZER}s, no crash ($cov, corpus $(ls "$corpus" | wc -l))")
  fi
  say "${summary[-1]}"
done
say "summary:"
printf '  %s\n' "${summary[@]}"
exit $fail
