"""The GPU backend's CUDA kernels compiled as C++ and run on the CPU, one emulated thread at a time.

Every kernel in kernels/cuda_src.py is one thread per output element (no shared memory, no
barriers), so a serial loop over the grid is an exact emulation. This checks the kernel logic
(not nvcc or the launch code) on a machine without a GPU: the sampler reproduces the NumPy twin
bit for bit, and an epoch with the fused Adagrad kernels equals the array-level epoch (float64
rel. 1e-12; float32 rel. 1e-4).
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from amrlite.kernels import arraylevel as al
from amrlite.kernels import cuda_src, fused
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec, init_params
from amrlite.train import TrainConfig
from helpers import random_split
from cases import MODELS

CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to emulate CUDA kernels")

PRELUDE = r"""
#include <cmath>
struct amr_dim3 { unsigned int x, y, z; };
static amr_dim3 blockIdx, blockDim, threadIdx;
#define __global__
#define __device__ static inline
using std::sqrt; using std::exp; using std::fabs; using std::log1p;
template <typename T> static inline T atomicAdd(T* at, T v) { T old = *at; *at += v; return old; }
extern "C" void amr_set_thread(unsigned int b, unsigned int d, unsigned int t) {
    blockIdx.x = b; blockDim.x = d; threadIdx.x = t;
}
"""


def compile_kernels(source, tmp_path, name):
    src, lib = tmp_path / f"{name}.cpp", tmp_path / f"lib{name}.so"
    src.write_text(PRELUDE + source)
    subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True,
                   capture_output=True)
    return ctypes.CDLL(str(lib))


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data) if a is not None else ctypes.c_void_p(0)


def launch(lib, fn, n_threads, args, threads=64):
    """Run kernel ``fn`` over a 1-D grid covering ``n_threads`` (block size ``threads``)."""
    blocks = max(1, (n_threads + threads - 1) // threads)
    for b in range(blocks):
        for t in range(threads):
            lib.amr_set_thread(b, threads, t)
            fn(*args)


@pytest.fixture(scope="module")
def sampler_lib(tmp_path_factory):
    return compile_kernels(cuda_src.SAMPLER, tmp_path_factory.mktemp("cuda"), "sampler")


@pytest.fixture(scope="module")
def train_libs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda")
    return {np.dtype(np.float32): compile_kernels(cuda_src.real_source("float", 1), d, "f32"),
            np.dtype(np.float64): compile_kernels(cuda_src.real_source("double", 1), d, "f64")}


def test_sampler_kernel_matches_numpy_twin_bit_for_bit(sampler_lib):
    split, _ = random_split(n_users=25, n_items=40, per_user=10, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items).astype(np.int32)
    seed = 987654321987654321
    u, i, j = al.sample_epoch(split.train_users, split.train_items, indptr, indices, pool, seed,
                              np)
    n = len(u)
    j_k = np.full(n, -1, dtype=np.int32)
    failed = np.zeros(1, dtype=np.int32)
    indptr64 = np.ascontiguousarray(indptr, dtype=np.int64)
    indices32 = np.ascontiguousarray(indices, dtype=np.int32)
    u32 = np.ascontiguousarray(u, dtype=np.int32)
    args = (ptr(u32), ptr(indptr64), ptr(indices32), ptr(pool), ctypes.c_longlong(len(pool)),
            ctypes.c_ulonglong(seed), ctypes.c_longlong(n), ctypes.c_int(al.MAX_TRIES),
            ptr(j_k), ptr(failed))
    launch(sampler_lib, sampler_lib.draw_negatives, n, args)
    assert failed[0] == 0
    np.testing.assert_array_equal(j_k, j)


def test_sampler_kernel_reports_failure(sampler_lib):
    indptr = np.array([0, 2], dtype=np.int64)
    indices = np.array([0, 1], dtype=np.int32)
    pool = np.array([0, 1], dtype=np.int32)
    u = np.zeros(1, dtype=np.int32)
    j = np.zeros(1, dtype=np.int32)
    failed = np.zeros(1, dtype=np.int32)
    args = (ptr(u), ptr(indptr), ptr(indices), ptr(pool), ctypes.c_longlong(2),
            ctypes.c_ulonglong(1), ctypes.c_longlong(1), ctypes.c_int(50), ptr(j), ptr(failed))
    launch(sampler_lib, sampler_lib.draw_negatives, 1, args)
    assert failed[0] == 1


def emulated_launcher(libs):
    """:mod:`kernels.fused`'s ``launch`` on the C++ build: arrays become pointers, NumPy
    scalars their C types, and the grid runs one thread at a time."""
    ctype = {np.int32: ctypes.c_int, np.int64: ctypes.c_longlong, np.float64: ctypes.c_double}

    def arg(a):
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous
            return ptr(a)
        return ctype[type(a)](a)

    def run(name, dtype, n_threads, *args):
        lib = libs[np.dtype(dtype)]
        launch(lib, getattr(lib, name), n_threads, [arg(a) for a in args], threads=128)

    return run


def numpy_gemm(transa, transb, a, b, out):
    out[...] = (a.T if transa == "T" else a) @ (b.T if transb == "T" else b)


@pytest.mark.parametrize("kind,form", MODELS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_fused_epoch_equals_reference_epoch(train_libs, kind, form, dtype, tol):
    """Every launch of the GPU epoch (kernels/fused.py), emulated, against the reference epoch:
    several batches (the last one short), repeated users and items, float64 to 1e-12."""
    spec = ModelSpec(kind, form)
    split, features = random_split(n_users=20, n_items=30, per_user=6, n_features=5, seed=2)
    features = features.astype(dtype)
    params = init_params(spec, 20, 30, 4, 5, seed=1, std=0.3, dtype=dtype)
    accum = {k: np.full_like(v, 0.1) for k, v in params.items()}
    indptr, indices = split.train_csr
    triples = ref.sample_epoch(split.train_users, split.train_items, indptr, indices,
                               np.flatnonzero(split.warm_items), np.random.default_rng(0))
    assert len(triples[0]) % 16
    hp = TrainConfig(batch_size=16, lr=0.05, reg=0.01, reg_e=0.01, eps=0.3, lmd=0.5)
    p1, a1 = ({k: v.copy() for k, v in d.items()} for d in (params, accum))
    p2, a2 = ({k: v.copy() for k, v in d.items()} for d in (params, accum))
    l1 = ref.train_epoch(spec, p1, a1, features, triples, hp)
    l2 = fused.train_epoch(spec, p2, a2, features, triples, hp, np, emulated_launcher(train_libs),
                           numpy_gemm, lanes=1)
    assert abs(l1 - l2) <= tol * abs(l1)
    for name in params:
        scale = np.abs(p1[name]).max()
        assert np.abs(p1[name] - p2[name]).max() <= tol * scale, name
        assert np.abs(a1[name] - a2[name]).max() <= tol * np.abs(a1[name]).max(), name
        assert not np.array_equal(p2[name], params[name]), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_count_kernel_counts_ties_and_masked_items(train_libs, dtype):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(7, 301)).astype(dtype)    # many ties
    scores[2, :40] = -np.inf                                    # masked training items
    pos = scores[np.arange(7), rng.integers(0, 301, size=7)].copy()
    pos[2] = scores[2, 100]
    counts = np.zeros(7, dtype=np.uint64)
    run = emulated_launcher(train_libs)
    run("count_at_least", dtype, 7 * 32, scores, pos, np.int64(7), np.int64(301), np.int32(32),
        counts)
    np.testing.assert_array_equal(counts, (scores >= pos[:, None]).sum(axis=1))


def test_fused_epoch_refuses_features_of_another_dtype():
    spec = ModelSpec("vbpr")
    params = init_params(spec, 3, 4, 2, 5, seed=0, dtype=np.float32)
    with pytest.raises(ValueError, match="float64 but the parameters float32"):
        fused.train_epoch(spec, params, params, np.zeros((4, 5)), ([0], [1], [2]),
                          TrainConfig(), np, None, None)


def test_fused_epoch_refuses_the_explicit_adversaries():
    spec = ModelSpec("amr")
    with pytest.raises(ValueError, match="sign"):
        fused.train_epoch(spec, {}, {}, None, ([], [], []), TrainConfig(adversary="sign"), np,
                          None, None)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("which", ["sampler", "float", "double"])
def test_kernels_compile_with_nvcc_for_hopper(tmp_path, which):
    """CuPy compiles with NVRTC at run time; nvcc (where present, no GPU needed) catches CUDA
    syntax and type errors here first."""
    source = cuda_src.SAMPLER if which == "sampler" else cuda_src.real_source(which)
    src = tmp_path / f"{which}.cu"
    src.write_text(source)
    out = subprocess.run(["nvcc", "-arch=sm_90", "-c", str(src), "-o", str(tmp_path / "k.o")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
