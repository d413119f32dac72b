r"""CUDA C sources of the GPU backend's fused kernels, kept free of CuPy so that the CPU suite can
compile them with a C++ compiler and run them thread by thread (tests/test_cuda_src.py): each
kernel is one thread per output element, no shared memory, no ``__syncthreads``, so a serial
loop over the grid is an exact emulation.

* ``draw_negatives`` — the seeded sampler: for the triple at position r, try t = 0, 1, …:
  ``h = counter_hash(seed, 1 + t, r)``, candidate ``pool[((h >> 32)·n_pool) >> 32]``, accepted
  when a binary search does not find it in the user's sorted CSR row. Bit-identical to
  :func:`.arraylevel.sample_epoch` (same SplitMix64 words).
* ``row_adagrad`` — one thread per (segment slot q, column k) of a batch: sums the occurrences
  of the segment's row in occurrence order (deterministic, no atomics), then
  ``A ← A + G²; θ ← θ − lr G/(√A + eps)`` for that row: the segment sum, the gather, the
  accumulator and the parameter update of :func:`.arraylevel.adagrad` in one launch per table.
* ``segment_sum`` — the same deterministic per-segment sum, written out (AMR's ṽ): replaces
  ``zeros`` + ``cupyx.scatter_add``, whose float atomics would make runs differ in the last bit.
* ``dense_adagrad`` — the same for the dense Ẽ (one launch instead of five).

``REAL`` is ``float`` or ``double`` (one compiled module each).
"""

HASH = r"""
#define GOLDEN 0x9E3779B97F4A7C15ULL
__device__ unsigned long long amr_mix64(unsigned long long z) {
    z ^= z >> 30; z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 27; z *= 0x94D049BB133111EBULL;
    z ^= z >> 31; return z;
}
__device__ unsigned long long amr_hash(unsigned long long seed, unsigned long long stream,
                                       unsigned long long counter) {
    unsigned long long key = amr_mix64(seed ^ (stream * GOLDEN));
    return amr_mix64(key + (counter + 1ULL) * GOLDEN);
}
"""

SAMPLER = HASH + r"""
extern "C" __global__ void draw_negatives(const int* u, const long long* indptr,
                                          const int* indices, const int* pool, long long n_pool,
                                          unsigned long long seed, long long n, int max_tries,
                                          int* j, int* failed) {
    long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    long long lo = indptr[u[r]], hi = indptr[u[r] + 1];
    int cand = 0;
    for (int t = 0; t < max_tries; ++t) {
        unsigned long long h = amr_hash(seed, 1ULL + (unsigned long long)t,
                                        (unsigned long long)r);
        unsigned long long k = ((h >> 32) * (unsigned long long)n_pool) >> 32;
        cand = pool[k];
        long long a = lo, b = hi;              /* first position with indices[pos] >= cand */
        while (a < b) {
            long long mid = (a + b) >> 1;
            if (indices[mid] < cand) a = mid + 1; else b = mid;
        }
        if (a == hi || indices[a] != cand) { j[r] = cand; return; }
    }
    j[r] = cand;
    failed[0] = 1;
}
"""

ADAGRAD = r"""
extern "C" __global__ void row_adagrad(REAL* table, REAL* accum, const REAL* grad,
                                       const int* index, const int* order, const int* heads,
                                       const int* seg_offset, const int* n_seg, int block,
                                       long long occ_start, long long n_slots, int K,
                                       double lr, double eps) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_slots * K) return;
    long long q = t / K;
    int k = (int)(t % K);
    if (q >= n_seg[block]) return;
    long long g0 = seg_offset[block] + q;
    int lo = heads[g0], hi = heads[g0 + 1];
    REAL s = 0;
    long long row = 0;
    for (int p = lo; p < hi; ++p) {
        long long o = (long long)order[p] - occ_start;
        s += grad[o * K + k];
        row = index[o];
    }
    long long at = row * K + k;
    REAL a = accum[at] + s * s;
    accum[at] = a;
    table[at] = table[at] - (REAL)lr * s / (sqrt(a) + (REAL)eps);
}

extern "C" __global__ void segment_sum(REAL* out, const REAL* values, const int* order,
                                       const int* heads, const int* seg_offset,
                                       const int* n_seg, int block, long long occ_start,
                                       long long n_slots, int K) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_slots * K) return;
    long long q = t / K;
    int k = (int)(t % K);
    if (q >= n_seg[block]) { out[t] = 0; return; }
    long long g0 = seg_offset[block] + q;
    REAL s = 0;
    for (int p = heads[g0]; p < heads[g0 + 1]; ++p)
        s += values[((long long)order[p] - occ_start) * K + k];
    out[t] = s;
}

extern "C" __global__ void dense_adagrad(REAL* theta, REAL* accum, const REAL* grad,
                                         long long n, double lr, double eps) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    REAL g = grad[t];
    REAL a = accum[t] + g * g;
    accum[t] = a;
    theta[t] = theta[t] - (REAL)lr * g / (sqrt(a) + (REAL)eps);
}
"""


def adagrad_source(real):
    return "#define REAL " + real + "\n" + ADAGRAD
