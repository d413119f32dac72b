#!/usr/bin/env bash
# One-call device check: install without network, GPU tests, then the CPU-vs-GPU benchmark.
# Each part has a hard cap (timeout) so the whole run stays under 8 minutes. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/amrlite-gpu-check}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
echo "== install (no network)"
timeout 60 $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -3
$PY -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'cuda rt', cupy.cuda.runtime.runtimeGetVersion())"
nvidia-smi -L
echo "== GPU tests (cap 150 s)"
timeout 150 $PY -m pytest -m gpu tests -q -x -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log" | tail -15
echo "== kernel emulation + array-level tests (cap 60 s)"
timeout 60 $PY -m pytest tests/test_arraylevel.py tests/test_cuda_src.py -q -p no:cacheprovider 2>&1 | tail -3
echo "== benchmark (cap 240 s)"
timeout 240 $PY bench/gpu_bench.py --json "$OUT/gpu_bench.json" 2>&1 | tee "$OUT/gpu_bench.log" | tail -40
