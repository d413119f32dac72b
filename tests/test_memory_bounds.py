"""Memory bounded at any catalogue size: full ranking scores a block of rows at a time, the
feature attacks form Γ, Δ and c + Δ a block of item rows at a time and never copy the
features whole. Each stage gives the same results in blocks as in one piece, and its peak of
NumPy allocations (``tracemalloc``) stays below the whole array the old code built."""
import os
import tracemalloc

import numpy as np
import pytest

from amrlite import Model
from amrlite import attack as attack_mod
from amrlite.attack import Rows, Attacker, item_blocks, perturbation, perturbation_rows
from amrlite.backends import get_backend
from amrlite.kernels import reference as ref
from helpers import random_dataset


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _integer_problem(n_users=40, n_items=3000, F=8, seed=0):
    """Factors with small integer values: every product and sum is exact in float32, so any
    block layout gives the same scores (and ties, which count against the positive)."""
    rng = np.random.default_rng(seed)
    U = rng.integers(-3, 4, (n_users, F)).astype(np.float32)
    V = rng.integers(-3, 4, (n_items, F)).astype(np.float32)
    users = np.repeat(np.arange(n_users), 2)
    items = rng.integers(0, n_items, len(users))
    train = [np.sort(rng.choice(n_items, 30, replace=False)) for _ in range(n_users)]
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in train])]).astype(np.int64)
    return U, V, users, items, indptr, np.concatenate(train).astype(np.int32)


def test_score_rows_caps_the_block():
    assert ref.score_rows(1000) == ref.RANK_CHUNK
    assert ref.score_rows(ref.SCORE_BUDGET // 10) == 10
    assert ref.score_rows(10 * ref.SCORE_BUDGET) == 1
    assert ref.score_rows(100, rows=2048) == 2048


@pytest.mark.parametrize("backend", ["numpy", "numba", "numpy-arraylevel"])
def test_full_ranks_in_small_blocks_equal_one_block(backend, monkeypatch):
    b = get_backend(backend)
    U, V, users, items, indptr, indices = _integer_problem()
    whole = b.full_ranks(U, V, users, items, indptr, indices)
    monkeypatch.setattr(ref, "SCORE_BUDGET", 7 * V.shape[0] + 5)         # 7 rows per block
    assert ref.score_rows(V.shape[0]) == 7
    np.testing.assert_array_equal(b.full_ranks(U, V, users, items, indptr, indices), whole)
    assert (whole >= 0).all() and whole.max() > 0


@pytest.mark.parametrize("backend", ["numpy", "numba", "numpy-arraylevel"])
def test_full_ranking_holds_one_score_block_at_a_time(backend, monkeypatch):
    b = get_backend(backend)
    U, V, users, items, indptr, indices = _integer_problem(n_users=200, n_items=20_000)
    monkeypatch.setattr(ref, "SCORE_BUDGET", 1_000_000)                 # 50 of 400 rows
    b.full_ranks(U, V, users, items, indptr, indices)                     # compiled, warmed
    _, peak = _peak_bytes(lambda: b.full_ranks(U, V, users, items, indptr, indices))
    block = ref.score_rows(V.shape[0]) * V.shape[0] * 4                   # float32 scores
    assert peak < 1.75 * block           # one block and its comparison temporaries, not two


@pytest.mark.parametrize("backend", ["numpy", "numpy-arraylevel"])
def test_top_items_hold_one_score_block_at_a_time(backend, monkeypatch):
    """The array-level top-n (NumPy, CuPy) scores at most SCORE_BUDGET scores per block, as
    full ranking does (it took 1,024 users × all items: 16 GB of scores and sort at 1M items),
    and small blocks give the lists of one block."""
    b = get_backend(backend)
    U, V, users, _, indptr, indices = _integer_problem(n_users=200, n_items=20_000)
    whole = b.top_items(U, V, np.arange(200), 10, indptr, indices)
    monkeypatch.setattr(ref, "SCORE_BUDGET", 1_000_000)                 # 50 of 200 users
    (items, scores), peak = _peak_bytes(
        lambda: b.top_items(U, V, np.arange(200), 10, indptr, indices))
    np.testing.assert_array_equal(items, whole[0])
    np.testing.assert_array_equal(scores, whole[1])
    block = ref.score_rows(V.shape[0]) * V.shape[0] * 4                   # float32 scores
    assert peak < 8 * block      # scores, −scores, the int64 order and the sort buffer: 6 blocks


@pytest.fixture(scope="module")
def fitted():
    ds, split = random_dataset(n_users=40, n_items=300, per_user=6, n_features=64, seed=1,
                               n_neg=10)
    models = {form: Model("vbpr", form=form, backend="numpy", epochs=2, dim=4, batch_size=32,
                          eval_every=0, seed=2, init_std=0.3).fit(ds, split="rand")
              for form in ("eq4", "hm")}
    for m in models.values():
        if "w" in m.params:
            m.params["w"] = np.random.default_rng(0).standard_normal(
                m.params["w"].shape).astype(np.float32)
    return ds, split, models


def test_item_blocks_cover_the_catalogue(monkeypatch):
    monkeypatch.setattr(attack_mod, "BLOCK_VALUES", 100)
    assert item_blocks(25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert item_blocks(3, 1000) == [(0, 1), (1, 2), (2, 3)]
    assert item_blocks(0, 5) == [(0, 0)]


@pytest.mark.parametrize("form", ["eq4", "hm"])
@pytest.mark.parametrize("kind,steps", [("adversarial", 1), ("sign", 1), ("adversarial", 3),
                                        ("random", 1)])
def test_perturbation_in_blocks_equals_one_block(fitted, form, kind, steps, monkeypatch):
    ds, split, models = fitted
    m = models[form]

    def run():
        att = Attacker(m, split, split.test, ds.features, "test", 0, False)
        rng = np.random.default_rng(3)
        delta, loss = perturbation(att, 0.3, kind, steps, rng=rng)
        return delta, loss, att.ranks_and_metrics(delta)[0], rng.random()

    delta, loss, ranks, after = run()
    assert len(item_blocks(*ds.features.shape)) == 1
    monkeypatch.setattr(attack_mod, "BLOCK_VALUES", 64 * 37)            # 37 items per block
    d2, loss2, ranks2, after2 = run()
    np.testing.assert_allclose(d2, delta, rtol=1e-12, atol=1e-15)
    assert (loss is None and loss2 is None) or loss2 == pytest.approx(loss, rel=1e-12)
    assert after2 == after                       # the random stream moved on by the same draws
    np.testing.assert_array_equal(ranks2, ranks)
    if kind == "random":
        np.testing.assert_array_equal(d2, delta)  # element-wise only: bit for bit
    assert np.abs(delta).max() > 0


def test_rows_reads_blocks_and_caches_the_last():
    calls = []
    r = Rows((6, 2), lambda s, e: calls.append((s, e)) or np.full((e - s, 2), float(s)))
    assert r.block(2, 4).tolist() == [[2.0, 2.0]] * 2
    r.block(2, 4)
    assert calls == [(2, 4)]
    assert r.dense().shape == (6, 2) and Rows.of(None) is None


def test_attack_never_copies_the_features(monkeypatch):
    ds, split = random_dataset(n_users=30, n_items=2000, per_user=4, n_features=512, seed=5,
                               n_neg=10)
    m = Model("vbpr", form="hm", backend="numpy", epochs=1, dim=4, batch_size=32, eval_every=0,
              seed=1).fit(ds, split="rand")
    monkeypatch.setattr(attack_mod, "BLOCK_VALUES", 1 << 15)
    features = ds.features
    features.setflags(write=False)

    def run():
        res = attack_mod.attack(m, ds, "rand", [0.1], kind="adversarial", steps=2)
        return res, attack_mod.attack(m, ds, "rand", [0.1], kind="random", repeats=2)

    (res, _), peak = _peak_bytes(run)
    one_copy = features.shape[0] * features.shape[1] * 8                  # float64 n_items × D
    assert peak < one_copy / 2
    assert res["eps"]["0.1"]["attacked_loss"] > res["clean_loss"]
    att = Attacker(m, split, split.test, features, "test", 0, False)
    assert att.c is features
    delta, _ = perturbation_rows(att, 0.1, "adversarial")
    assert isinstance(delta, Rows) and delta.shape == features.shape


@pytest.mark.parametrize("objective,full", [("test", True), ("test", False), ("train", False)],
                         ids=["test-full", "test-sampled", "train"])
def test_attack_objective_is_summed_in_chunks(objective, full, monkeypatch):
    """The objective's loss and ṽ are summed chunk by chunk (the chunked sums equal the one-chunk
    ones), and an evaluation objective's peak memory stays below what its pairs' indices alone
    (three int64 each) would take: the pairs are never listed."""
    ds, split = random_dataset(n_users=300, n_items=5000, per_user=10, n_features=8, seed=3,
                               n_neg=1000)
    m = Model("vbpr", backend="numpy", epochs=1, dim=4, batch_size=256, eval_every=0,
              seed=1).fit(ds, split="rand")
    att = Attacker(m, split, split.test, ds.features, objective, 0, full)
    n_pairs = len(att.pairs()[0])
    whole_loss, whole_gamma = att.loss_and_gamma(None)
    monkeypatch.setattr(attack_mod, "PAIR_CHUNK", n_pairs // 20)
    monkeypatch.setattr(attack_mod, "OBJECTIVE_SCORES", 1 << 16)
    (loss, gamma), peak = _peak_bytes(lambda: att.loss_and_gamma_rows(None))
    assert loss == pytest.approx(whole_loss, rel=1e-12)
    np.testing.assert_allclose(gamma.dense(), whole_gamma, rtol=1e-9, atol=1e-15)
    if objective == "test":
        assert n_pairs >= 300_000
        assert peak < n_pairs * 24, (peak, n_pairs)


# --------------------------------------------------------------------------------------------
# derived features: normalised, several modalities, aligned by id — never a copy in memory
# --------------------------------------------------------------------------------------------

def _shop_folder(folder, n_items=2000, dims=(384, 128), seed=0):
    """A native folder with two modalities (float32 and float64) and an id-keyed .npz of the
    first in shuffled order, written with plain NumPy."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    users = np.repeat(np.arange(200), 5)
    items = rng.integers(0, n_items, len(users))
    (folder / "interactions.csv").write_text(
        "user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items)))
    a = rng.standard_normal((n_items, dims[0])).astype(np.float32)
    a[7] = 0                                            # an item without content stays zero
    np.save(folder / "features.npy", a)
    np.save(folder / "features-image.npy", rng.random((n_items, dims[1])))
    order = rng.permutation(n_items)
    np.savez(folder.parent / "keyed.npz", ids=order, features=a[order])
    return a


@pytest.mark.parametrize("normalize,spec", [("l2", None), ("maxabs", None),
                                            ("default=l2,image=maxabs", "default,image"),
                                            ("none", "default,image")])
def test_derived_features_are_built_in_a_scratch_map(tmp_path, monkeypatch, normalize, spec):
    """Normalised and concatenated features are built block by block into a memory-mapped
    scratch file (removed at once): NumPy's own allocations stay far below one copy, and the
    values are bit for bit those of the same matrix built in memory."""
    import amrlite
    from amrlite import modalities
    _shop_folder(tmp_path / "shop")
    monkeypatch.setenv("AMRLITE_SCRATCH", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    in_memory = amrlite.load_dataset(tmp_path / "shop", features=spec, normalize=normalize)
    assert not isinstance(in_memory.features, np.memmap)
    monkeypatch.setattr(modalities, "SCRATCH_BYTES", 1 << 20)
    monkeypatch.setattr(modalities, "ROW_BLOCK_VALUES", 1 << 15)
    ds, peak = _peak_bytes(lambda: amrlite.load_dataset(tmp_path / "shop", features=spec,
                                                        normalize=normalize))
    assert isinstance(ds.features, np.memmap)
    assert peak < ds.features.nbytes / 4, (peak, ds.features.nbytes)
    assert ds.features.dtype == in_memory.features.dtype
    np.testing.assert_array_equal(ds.features, in_memory.features)
    assert ds.feature_info == in_memory.feature_info
    assert list((tmp_path / "scratch").iterdir()) == []       # nothing left behind
    if normalize == "l2":                 # training reads the map as it read the array
        fits = [Model("vbpr", backend="numba", epochs=1, dim=4, batch_size=64, eval_every=0,
                      seed=3).fit(d, split="loo") for d in (in_memory, ds)]
        for name, value in fits[0].params.items():
            np.testing.assert_array_equal(fits[1].params[name], value)


def test_features_keyed_by_id_are_mapped_and_aligned_in_a_scratch_map(tmp_path, monkeypatch):
    import amrlite
    from amrlite import modalities
    a = _shop_folder(tmp_path / "shop", dims=(1024, 16))
    log = tmp_path / "orders.csv"
    log.write_text("user,item\n" + "".join(f"u{k},{k * 7 % 2000}\n" for k in range(3000)))
    monkeypatch.setattr(modalities, "SCRATCH_BYTES", 1 << 20)
    monkeypatch.setattr(modalities, "ROW_BLOCK_VALUES", 1 << 15)
    ds, peak = _peak_bytes(lambda: amrlite.load_dataset(log, features=tmp_path / "keyed.npz"))
    assert peak < a.nbytes / 2, (peak, a.nbytes)          # was two copies: the .npz, aligned
    assert isinstance(ds.features, np.memmap) and ds.n_items == 2000
    ids = np.arange(ds.n_items) if ds.item_ids is None else ds.item_ids.astype(np.int64)
    np.testing.assert_array_equal(ds.features, a[ids])


def test_a_scratch_folder_that_cannot_be_written_is_one_clear_error(tmp_path, monkeypatch):
    import amrlite
    from amrlite import AmrliteError, modalities
    _shop_folder(tmp_path / "shop")
    monkeypatch.setattr(modalities, "SCRATCH_BYTES", 1 << 20)
    monkeypatch.setenv("AMRLITE_SCRATCH", str(tmp_path / "missing"))
    with pytest.raises(AmrliteError, match=r"missing: cannot create a scratch file .*AMRLITE_S"):
        amrlite.load_dataset(tmp_path / "shop", normalize="l2")


def test_a_full_scratch_disk_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    """The scratch file's space is taken up front, so a full disk is a one-line error at once
    (not a SIGBUS when the map is written), and the scratch file does not stay behind."""
    import errno
    import amrlite
    from amrlite import AmrliteError, modalities
    _shop_folder(tmp_path / "shop")
    (tmp_path / "scratch").mkdir()
    monkeypatch.setattr(modalities, "SCRATCH_BYTES", 1 << 20)
    monkeypatch.setenv("AMRLITE_SCRATCH", str(tmp_path / "scratch"))

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(modalities.os, "posix_fallocate", full, raising=False)
    with pytest.raises(AmrliteError, match=r"scratch: no room for a 3 MB scratch file .*No "
                       r"space left on device.*AMRLITE_SCRATCH"):
        amrlite.load_dataset(tmp_path / "shop", normalize="l2")
    assert list((tmp_path / "scratch").iterdir()) == []


def _rss_file_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_a_pass_over_mapped_features_hands_its_pages_back(tmp_path):
    """Reading every row of a memory-mapped file once (the checks, a scale) leaves the
    process's resident file pages where they were: each block is released after use."""
    from amrlite.modalities import load_features, maxabs_scale, release_rows
    path = tmp_path / "f.npy"
    np.save(path, np.ones((16384, 1024), dtype=np.float32))            # 64 MiB
    arr = load_features(path)                                           # checked: every row read
    before = _rss_file_kb()
    assert maxabs_scale(arr) == 1.0
    assert _rss_file_kb() - before < 16 * 1024                          # not 64 MiB
    np.asarray(arr).sum()                                               # touched whole
    assert _rss_file_kb() - before > 48 * 1024
    release_rows(arr, 0, arr.shape[0])
    assert _rss_file_kb() - before < 16 * 1024


def test_certified_bound_under_full_ranking_in_small_blocks_equals_one_block(fitted, monkeypatch):
    """The certified bound scores rows × all items in float64 blocks of at most
    OBJECTIVE_SCORES (was SCORE_BUDGET float32 scores, then a float64 copy: ~5 GB of
    temporaries at the Amazon size); blocks of 2 rows give the same bounds."""
    import copy
    from amrlite.attack import certified_ranks
    ds, split, models = fitted
    model = copy.deepcopy(models["hm"])        # small integers: every score exact in float32,
    rng = np.random.default_rng(4)             # so any block shape gives the same scores
    for name, value in model.params.items():
        model.params[name] = rng.integers(-2, 3, value.shape).astype(value.dtype)
    features = np.round(ds.features * 4).astype(np.float32)
    att = Attacker(model, split, split.test, features, "test", 0, True)
    ranks, flip = certified_ranks(att, [0.0, 0.1])
    monkeypatch.setattr(attack_mod, "OBJECTIVE_SCORES", 2 * split.n_items + 1)
    ranks2, flip2 = certified_ranks(att, [0.0, 0.1])
    np.testing.assert_array_equal(flip2, flip)
    for e in ranks:
        np.testing.assert_array_equal(ranks2[e], ranks[e])
    np.testing.assert_array_equal(ranks[0.0], att.ranks_and_metrics(None)[0])
    assert (ranks[0.1] >= ranks[0.0]).all() and (ranks[0.1] > ranks[0.0]).any()
