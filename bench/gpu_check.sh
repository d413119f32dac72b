#!/usr/bin/env bash
# One-call device check: install without network, GPU tests, then the CPU-vs-GPU benchmark.
# Each part has a hard cap (timeout) so the whole run stays under 8 minutes; a failing part does
# not stop the next. Logs go to $OUT. PARTS picks the benchmark's parts (bench/gpu_bench.py
# --parts; default: all of them), TESTS=0 skips the test parts.
set -u
OUT=${OUT:-/tmp/amrlite-gpu-check}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
PARTS=${PARTS:-ceil,profile,hostbreak,ours,torch,numba,curve,eval}
echo "== install (no network)"
timeout 60 $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -3
$PY -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'cuda rt', cupy.cuda.runtime.runtimeGetVersion())"
nvidia-smi -L
if [ "${TESTS:-1}" != 0 ]; then
  echo "== GPU tests (cap 150 s)"
  timeout 150 $PY -m pytest -m gpu tests -q -p no:cacheprovider --tb=short -rfE \
      --durations=5 > "$OUT/gpu_tests.log" 2>&1
  echo "exit $?"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/gpu_tests.log" | tail -25
  echo "== kernel emulation + array-level tests (cap 60 s)"
  timeout 60 $PY -m pytest tests/test_arraylevel.py tests/test_cuda_src.py -q \
      -p no:cacheprovider 2>&1 | tail -3
fi
echo "== benchmark (cap ${BENCH_CAP:-240} s; parts $PARTS)"
timeout "${BENCH_CAP:-240}" $PY bench/gpu_bench.py --parts "$PARTS" --json "$OUT/gpu_bench.json" \
    > "$OUT/gpu_bench.log" 2>&1
echo "exit $?"; cat "$OUT/gpu_bench.log" | tail -60
