r"""CUDA C sources of the GPU backend's kernels, kept free of CuPy so that the CPU suite can
compile them with a C++ compiler and run them thread by thread (tests/test_cuda_src.py): each
kernel is one thread per output element (or one warp per triple, whose lanes meet only in
``amr_lane_sum``: the emulation builds them with one lane), no shared memory, no
``__syncthreads``, no float atomics, so a serial loop over the grid is an exact emulation and a
run is deterministic.

* ``draw_negatives`` — the seeded sampler: for the triple at position r, try t = 0, 1, …:
  ``h = counter_hash(seed, 1 + t, r)``, candidate ``pool[((h >> 32)·n_pool) >> 32]``, accepted
  when a binary search does not find it in the user's sorted CSR row. Bit-identical to
  :func:`.arraylevel.sample_epoch` (same SplitMix64 words).

The training kernels (``REAL`` is ``float`` or ``double``, one compiled module each) are the
launches of :mod:`.fused`'s batch, which says what each computes and in which order:

* ``gather_x`` — ``X = [C[i] − C[j]; Ẽ]`` (m + e rows of D, e = K′ for AMR, else 0);
* ``bpr_forward`` — one warp per triple (lanes over k, shuffle sums): ``x_b``, ``s_b = −σ(−x_b)``, the triple's loss, and
  either its per-occurrence row gradients (no adversary) or ``±s_b z̃_b`` for ṽ (AMR);
* ``segment_sum`` — ṽ: the per-segment sum of ``±s_b z̃_b``, in occurrence order (no atomics);
* ``small_gemm`` — one thread per output of a strided ``C = A B`` with a short inner dimension
  (``W = ṼG̃``, inner dimension K′: launching cuBLAS costs more than this product);
* ``amr_adversary`` — one warp per triple: ``α``, ``Ẽ(Δ_i − Δ_j)``, ``r_b``, ``x̃_b``, ``s̃_b``,
  the adversarial loss, and the row gradients with ``s_b + s̃_b``;
* ``row_adagrad`` — one thread per (segment slot, column): the segment's summed gradient (in
  occurrence order) and ``A ← A + G²; θ ← θ − lr G/(√A + eps)`` for that row;
* ``dense_adagrad`` — the same for Ẽ, with its L2 term ``2β_E Ẽ`` added to the gradient.

Evaluation: ``count_at_least`` — for each row r of a score chunk, how many items score at least
the held-out item's ``pos[r]`` (``lanes`` threads per row stride over the items, coalesced, then
one integer ``atomicAdd`` each: integer sums do not depend on their order).
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

TRAIN = r"""
#define HAS_Q 1
#define HAS_CONTENT 2
#define HAS_H 4
#define HAS_BIAS 8
#define ADVERSARIAL 16
#ifndef LANES
#define LANES 32        /* threads per triple: one warp, lanes over k; 1 in the C++ emulation */
#endif

__device__ REAL amr_sigmoid(REAL x) {           /* the reference's two branches */
    REAL e = exp(-fabs(x));
    return x >= 0 ? (REAL)1 / ((REAL)1 + e) : e / ((REAL)1 + e);
}
__device__ REAL amr_softplus(REAL x) {          /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
    return (x > 0 ? x : (REAL)0) + log1p(exp(-fabs(x)));
}
__device__ REAL amr_lane_sum(REAL v) {          /* the sum over the triple's lanes, in each */
#if LANES > 1
    for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
#endif
    return v;
}

/* The parameter rows triple t = (u, i, j) reads; g is the user's content vector (h_u or p_u).
   Absent blocks point at p_u and are never read (the flags say which are there). */
struct amr_rows { const REAL *Pu, *Hu, *Qi, *Qj, *g; REAL bi, bj; };

__device__ amr_rows amr_rows_of(int flags, const int* u, const int* i, const int* j,
                                long long t, int K, const REAL* P, const REAL* Q,
                                const REAL* H, const REAL* bvec) {
    long long uu = u[t], ii = i[t], jj = j[t];
    amr_rows r;
    r.Pu = P + uu * K;
    r.Hu = (flags & HAS_H) ? H + uu * K : r.Pu;
    r.Qi = (flags & HAS_Q) ? Q + ii * K : r.Pu;
    r.Qj = (flags & HAS_Q) ? Q + jj * K : r.Pu;
    r.g = (flags & HAS_H) ? r.Hu : r.Pu;
    r.bi = (flags & HAS_BIAS) ? bvec[ii] : (REAL)0;
    r.bj = (flags & HAS_BIAS) ? bvec[jj] : (REAL)0;
    return r;
}

/* Per-occurrence row gradients of triple b (positives at b, negatives at m + b) and its row of
   A = s_id z~ for the E~ product, with s_id = s + s_adv and dF = E~(Delta_i - Delta_j) given as
   a_i W_i - a_j W_j (a_i = a_j = 0 without the adversary). Lane l does k = l, l + LANES, ... */
__device__ void amr_row_grads(int flags, long long b, int lane, int m, int K, int Kp,
                              REAL beta2, amr_rows r, const REAL* Fb, const REAL* Wi,
                              const REAL* Wj, REAL ai, REAL aj, REAL s, REAL s_adv,
                              REAL* gP, REAL* gH, REAL* gQ, REAL* gb, REAL* A) {
    REAL s_id = s + s_adv;
    const REAL *Pu = r.Pu, *Hu = r.Hu, *Qi = r.Qi, *Qj = r.Qj, *g = r.g;
    for (int k = lane; k < K; k += LANES) {
        REAL gp = beta2 * Pu[k];
        if (flags & HAS_Q) {
            gp = s_id * (Qi[k] - Qj[k]) + gp;
            gQ[b * K + k] = s_id * Pu[k] + beta2 * Qi[k];
            gQ[(m + b) * K + k] = -s_id * Pu[k] + beta2 * Qj[k];
        }
        if (flags & HAS_CONTENT) {
            REAL ct = s * Fb[k];
            if (flags & ADVERSARIAL) ct = ct + s_adv * (Fb[k] + (ai * Wi[k] - aj * Wj[k]));
            if (flags & HAS_H) gH[b * K + k] = ct + beta2 * Hu[k];
            else gp = gp + ct;
            A[b * Kp + k] = s_id * g[k];
        }
        gP[b * K + k] = gp;
    }
    if ((flags & HAS_BIAS) && lane == 0) {
        gb[b] = s_id + beta2 * r.bi;
        gb[m + b] = -s_id + beta2 * r.bj;
        A[b * Kp + K] = s_id;
    }
}

extern "C" __global__ void gather_x(REAL* X, const REAL* C, const int* i, const int* j,
                                    long long start, int m, const REAL* Et, int e, long long D) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (m + e) * D) return;
    long long r = t / D, c = t % D;
    if (r < m) X[t] = C[(long long)i[start + r] * D + c] - C[(long long)j[start + r] * D + c];
    else X[t] = Et[(r - m) * D + c];
}

/* One triple per LANES threads (a whole warp on the GPU: every lane returns or none does). */
extern "C" __global__ void bpr_forward(int flags, const int* u, const int* i, const int* j,
                                       long long start, int m, int K, int Kp,
                                       const REAL* P, const REAL* Q, const REAL* H,
                                       const REAL* bvec, const REAL* F, double reg,
                                       double* losses, REAL* xs, REAL* signedZ,
                                       REAL* gP, REAL* gH, REAL* gQ, REAL* gb, REAL* A) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long b = t / LANES;
    int lane = (int)(t % LANES);
    if (b >= m) return;
    amr_rows r = amr_rows_of(flags, u, i, j, start + b, K, P, Q, H, bvec);
    const REAL *Pu = r.Pu, *Hu = r.Hu, *Qi = r.Qi, *Qj = r.Qj, *g = r.g;
    REAL bi = r.bi, bj = r.bj;
    const REAL* Fb = F + b * Kp;
    REAL x = 0, xc = 0, norms = 0;
    for (int k = lane; k < K; k += LANES) {
        norms += Pu[k] * Pu[k];
        if (flags & HAS_Q) { x += Pu[k] * (Qi[k] - Qj[k]); norms += Qi[k] * Qi[k] + Qj[k] * Qj[k]; }
        if (flags & HAS_H) norms += Hu[k] * Hu[k];
        if (flags & HAS_CONTENT) xc += g[k] * Fb[k];
    }
    x = amr_lane_sum(x);
    xc = amr_lane_sum(xc);
    norms = amr_lane_sum(norms);
    if (flags & HAS_BIAS) { xc += Fb[K]; norms += bi * bi + bj * bj; }
    x = x + xc;
    if (flags & HAS_BIAS) x = x + (bi - bj);
    REAL s = -amr_sigmoid(-x);
    if (lane == 0) losses[start + b] = (double)amr_softplus(-x) + reg * (double)norms;
    if (flags & ADVERSARIAL) {
        if (lane == 0) { xs[b] = x; xs[m + b] = s; }
        for (int k = lane; k < Kp; k += LANES) {
            REAL z = k < K ? g[k] : (REAL)1;
            signedZ[b * Kp + k] = s * z;
            signedZ[(m + b) * Kp + k] = -s * z;
        }
    } else {
        amr_row_grads(flags, b, lane, m, K, Kp, (REAL)(2 * reg), r, Fb, Fb, Fb, 0, 0, s, 0,
                      gP, gH, gQ, gb, A);
    }
}

extern "C" __global__ void amr_adversary(int flags, const int* u, const int* i, const int* j,
                                         long long start, int m, int K, int Kp,
                                         const REAL* P, const REAL* Q, const REAL* H,
                                         const REAL* bvec, const REAL* F, double reg,
                                         const REAL* V, const REAL* W, const int* inv,
                                         long long occ_start, double eps, double lmd,
                                         double* losses, const REAL* xs, REAL* R, REAL* A2,
                                         REAL* gP, REAL* gH, REAL* gQ, REAL* gb, REAL* A) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long b = t / LANES;
    int lane = (int)(t % LANES);
    if (b >= m) return;
    long long qi = inv[occ_start + b], qj = inv[occ_start + m + b];
    const REAL *Vi = V + qi * Kp, *Wi = W + qi * Kp, *Vj = V + qj * Kp, *Wj = W + qj * Kp;
    REAL ni = 0, nj = 0;                       /* ||Gamma||^2 = v~ G~ v~ per segment */
    for (int k = lane; k < Kp; k += LANES) { ni += Vi[k] * Wi[k]; nj += Vj[k] * Wj[k]; }
    ni = amr_lane_sum(ni);
    nj = amr_lane_sum(nj);
    REAL ai = ni > 0 ? (REAL)eps / sqrt(ni) : (REAL)0;
    REAL aj = nj > 0 ? (REAL)eps / sqrt(nj) : (REAL)0;
    amr_rows r = amr_rows_of(flags, u, i, j, start + b, K, P, Q, H, bvec);
    const REAL* g = r.g;
    REAL dx = 0;
    for (int k = lane; k < Kp; k += LANES) {
        REAL z = k < K ? g[k] : (REAL)1;
        dx += z * (ai * Wi[k] - aj * Wj[k]);
        R[b * Kp + k] = ai * Vi[k] - aj * Vj[k];
    }
    dx = amr_lane_sum(dx);
    REAL x_adv = xs[b] + dx;
    REAL s_adv = -(REAL)lmd * amr_sigmoid(-x_adv);
    if (lane == 0) losses[start + b] += lmd * (double)amr_softplus(-x_adv);
    for (int k = lane; k < Kp; k += LANES) A2[b * Kp + k] = s_adv * (k < K ? g[k] : (REAL)1);
    amr_row_grads(flags, b, lane, m, K, Kp, (REAL)(2 * reg), r, F + b * Kp, Wi, Wj, ai, aj,
                  xs[m + b], s_adv, gP, gH, gQ, gb, A);
}

extern "C" __global__ void small_gemm(const REAL* Am, long long a_r, long long a_c,
                                      const REAL* Bm, long long b_r, long long b_c,
                                      REAL* C, long long ldc, long long M, long long N, int Kd) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= M * N) return;
    long long r = t / N, c = t % N;
    REAL acc = 0;
    for (int k = 0; k < Kd; ++k) acc += Am[r * a_r + k * a_c] * Bm[k * b_r + c * b_c];
    C[r * ldc + c] = acc;
}

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
    long long row = index[order[lo]];
    for (int p = lo; p < hi; ++p) s += grad[((long long)order[p] - occ_start) * K + k];
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
                                         long long n, double lr, double eps, double reg_e) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    REAL g = grad[t] + (REAL)(2 * reg_e) * theta[t];
    REAL a = accum[t] + g * g;
    accum[t] = a;
    theta[t] = theta[t] - (REAL)lr * g / (sqrt(a) + (REAL)eps);
}
"""


RANK = r"""
extern "C" __global__ void count_at_least(const REAL* scores, const REAL* pos, long long rows,
                                          long long n_items, int lanes,
                                          unsigned long long* counts) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows * lanes) return;
    long long r = t / lanes;
    REAL p = pos[r];
    unsigned long long c = 0;
    for (long long k = t % lanes; k < n_items; k += lanes) c += scores[r * n_items + k] >= p;
    atomicAdd(&counts[r], c);
}
"""


def real_source(real, lanes=None):
    """The training and ranking kernels for ``real`` = ``"float"`` or ``"double"`` (``lanes``:
    threads per triple, 32 unless given; the C++ emulation builds them with 1)."""
    head = "#define REAL " + real + "\n"
    if lanes is not None:
        head += f"#define LANES {int(lanes)}\n"
    return head + TRAIN + RANK
