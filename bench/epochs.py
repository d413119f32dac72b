"""One training epoch per (problem, model, backend), ready to time; FLOP/byte floor of an epoch.

Backends: ``numpy`` (the reference), ``numba`` (kernels/cpu.py), ``torch`` (plain autograd:
sparse embedding gradients, Adagrad, Γ by autograd w.r.t. the batch's feature rows; optional),
``cornac`` (its Cython BPR, MF only; optional).
"""
from __future__ import annotations

import time

import numpy as np

from amrlite.kernels import cpu
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec, init_params
from amrlite.train import TrainConfig

MODELS = ("mf", "duif", "vbpr", "amr")
K = 64
BATCH = 512
HP = TrainConfig(dim=K, batch_size=BATCH, lr=0.05, reg=1e-3, reg_e=0.0, eps=0.1, lmd=1.0)


def triples_for(split, seed=0):
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items).astype(np.int32)
    return cpu.sample_epoch(split.train_users, split.train_items, indptr, indices, pool,
                            np.random.default_rng(seed))


class Epoch:
    """State for repeated epochs of one model on one backend (parameters keep training)."""

    def __init__(self, backend, kind, split, features, triples, fraction=1.0):
        self.kind, self.backend = kind, backend
        self.spec = ModelSpec(kind)
        n = max(BATCH, int(round(len(triples[0]) * fraction / BATCH)) * BATCH)
        self.fraction = min(1.0, n / len(triples[0]))
        self.triples = tuple(np.ascontiguousarray(a[:n]) for a in triples)
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.params = init_params(self.spec, split.n_users, split.n_items, K,
                                  features.shape[1] if self.spec.has_content else 0)
        self.accum = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.module = {"numpy": ref, "numba": cpu}.get(backend)
        if backend == "torch":
            self.torch = TorchEpoch(self.spec, self.params, self.features)
        if backend == "cornac":
            self.cornac = CornacEpoch(split)

    def warm_up(self):
        """Compile (numba) / allocate: one short epoch outside the timed rounds."""
        short = tuple(a[:2 * BATCH] for a in self.triples)
        if self.module is not None:
            self.module.train_epoch(self.spec, {k: v.copy() for k, v in self.params.items()},
                                    {k: v.copy() for k, v in self.accum.items()}, self.features,
                                    short, HP)
        elif self.backend == "torch":
            self.torch.epoch(short)
        else:
            self.cornac.warm_up()

    def run(self):
        if self.module is not None:
            return self.module.train_epoch(self.spec, self.params, self.accum, self.features,
                                           self.triples, HP)
        if self.backend == "torch":
            return self.torch.epoch(self.triples)
        return self.cornac.epoch()


class TorchEpoch:
    """The same epoch as plain PyTorch autograd: what a user would otherwise write."""

    def __init__(self, spec, params, features):
        import torch
        torch.set_num_threads(2)
        self.torch, self.spec = torch, spec
        self.emb = {}
        for name in ("P", "Q"):
            if name in params:
                e = torch.nn.Embedding(*params[name].shape, sparse=True)
                e.weight.data = torch.from_numpy(params[name].copy())
                self.emb[name] = e
        groups = [e.weight for e in self.emb.values()]
        self.E = None
        if "E" in params:
            self.E = torch.nn.Parameter(torch.from_numpy(params["E"].copy()))
            groups.append(self.E)
        self.features = torch.from_numpy(features)
        self.opt = torch.optim.Adagrad(groups, lr=HP.lr, eps=1e-10)

    def _scores(self, p, qi, qj, ci, cj):
        torch = self.torch
        x = torch.zeros(p.shape[0])
        if qi is not None:
            x = x + (p * (qi - qj)).sum(1)
        if ci is not None:
            x = x + (p * (ci @ self.E.T - cj @ self.E.T)).sum(1)
        return x

    def epoch(self, triples):
        torch = self.torch
        F = torch.nn.functional
        u, i, j = (torch.from_numpy(a.astype(np.int64)) for a in triples)
        total = 0.0
        for s in range(0, len(u), BATCH):
            ub, ib, jb = u[s:s + BATCH], i[s:s + BATCH], j[s:s + BATCH]
            p = self.emb["P"](ub)
            qi = self.emb["Q"](ib) if "Q" in self.emb else None
            qj = self.emb["Q"](jb) if "Q" in self.emb else None
            ci = cj = None
            if self.E is not None:
                ci = self.features[ib].requires_grad_(self.spec.adversarial)
                cj = self.features[jb].requires_grad_(self.spec.adversarial)
            loss = F.softplus(-self._scores(p, qi, qj, ci, cj)).sum()
            if self.spec.adversarial:
                gi, gj = torch.autograd.grad(loss, (ci, cj), retain_graph=True)
                items, inv = torch.unique(torch.cat([ib, jb]), return_inverse=True)
                gamma = torch.zeros(len(items), ci.shape[1]).index_add_(0, inv, torch.cat([gi, gj]))
                norm = gamma.norm(dim=1, keepdim=True)
                delta = torch.where(norm > 0, HP.eps * gamma / norm.clamp_min(1e-30), 0.0)
                ca, cb = ci.detach() + delta[inv[:len(ib)]], cj.detach() + delta[inv[len(ib):]]
                loss = loss + HP.lmd * F.softplus(-self._scores(p, qi, qj, ca, cb)).sum()
            reg = (p * p).sum() + (0 if qi is None else (qi * qi).sum() + (qj * qj).sum())
            loss = loss + HP.reg * reg
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += float(loss)
        return total


class CornacEpoch:
    """Cornac's Cython BPR (SGD per triple, its own sampler): seconds per epoch from
    ``(fit(11 iters) − fit(1 iter)) / 10``."""

    def __init__(self, split):
        import cornac
        self.cornac = cornac
        data = list(zip(split.train_users.astype(str), split.train_items.astype(str),
                        np.ones(split.n_train)))
        self.train = cornac.data.Dataset.from_uir(data, seed=0)

    def _fit(self, iters):
        m = self.cornac.models.BPR(k=K, max_iter=iters, learning_rate=0.01, lambda_reg=0.01,
                                   seed=0, verbose=False)
        t = time.perf_counter()
        m.fit(self.train)
        return time.perf_counter() - t

    def warm_up(self):
        self._fit(1)

    def epoch(self):
        return (self._fit(11) - self._fit(1)) / 10


# ----------------------------------------------------------------------------------------------
# the floor
# ----------------------------------------------------------------------------------------------

def epoch_floor(kind, n_triples, n_features, k=K, batch=BATCH, itemsize=4):
    """``(flops, bytes)`` one epoch must compute and move (bench/README.md derives the counts).

    Per triple: scores and row gradients ~12K flops (MF part), Adagrad on ≤ 3 (P, Q_i, Q_j) rows
    6K·3; content: the gather D, f = (c_i − c_j)Eᵀ 2KD, ∂E += W diff 2KD. Per batch: Adagrad on
    E (6KD); AMR adds G = EEᵀ and M E (2·2K²D) and ~8K² per triple (G v_k, M). Bytes: each
    triple reads/writes 3 parameter rows and 3 accumulator rows (4·3·K·itemsize) and, with
    content, reads two feature rows (2·D·itemsize); each batch streams E, its accumulator and
    gradient (5·K·D·itemsize).
    """
    batches = -(-n_triples // batch)
    has_q = kind in ("mf", "vbpr", "amr")
    rows = 3 if has_q else 1
    flops = n_triples * (12 * k + 6 * k * rows)
    nbytes = n_triples * 4 * rows * k * itemsize
    if kind in ("duif", "vbpr", "amr"):
        D = n_features
        flops += n_triples * (D + 4 * k * D) + batches * 6 * k * D
        nbytes += n_triples * 2 * D * itemsize + batches * 5 * k * D * itemsize
    if kind == "amr":
        flops += batches * 4 * k * k * D + n_triples * 8 * k * k
    return flops, nbytes


def machine_peaks(seconds=0.5):
    """Measured float32 GEMM rate (flop/s, BLAS, all threads) and copy bandwidth (byte/s)."""
    a = np.random.default_rng(0).standard_normal((1024, 2048), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((2048, 1024), dtype=np.float32)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    gflops = n * 2 * 1024 * 2048 * 1024 / (time.perf_counter() - t0)
    x = np.ones(64 * 2**20 // 4, dtype=np.float32)
    y = np.empty_like(x)
    np.copyto(y, x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.copyto(y, x)
        n += 1
    bw = n * 2 * x.nbytes / (time.perf_counter() - t0)
    return gflops, bw


def available(backend):
    if backend in ("numpy", "numba"):
        return True
    try:
        __import__({"torch": "torch", "cornac": "cornac"}[backend])
        return True
    except Exception:
        return False
