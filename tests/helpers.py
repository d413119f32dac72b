"""Small random problems shared by the tests (no files, no shared data), and the checks and
readers several test files use."""
import csv
import json
import re
from pathlib import Path

import numpy as np

from amrlite.containers import Dataset, EvalRows, Split


def random_split(n_users=30, n_items=50, per_user=8, n_features=6, seed=0, cold=0, n_neg=20):
    """A random Split with one test and one valid row per user, ``cold`` items never trained,
    and features; returns ``(split, features)``."""
    rng = np.random.default_rng(seed)
    warm = np.arange(cold, n_items)
    tu, ti, test, valid = [], [], [], []
    for u in range(n_users):
        items = rng.choice(warm, size=per_user + 2, replace=False)
        if cold and u % 3 == 0:
            items[0] = rng.integers(0, cold)
        test.append(items[0])
        valid.append(items[1])
        tu += [u] * per_user
        ti += list(items[2:])
    seen = [set(ti[k] for k in range(len(tu)) if tu[k] == u) | {test[u], valid[u]}
            for u in range(n_users)]

    def negatives(u):
        cand = np.array([x for x in range(n_items) if x not in seen[u]])
        return rng.choice(cand, size=n_neg, replace=False)

    users = np.arange(n_users, dtype=np.int32)
    split = Split("rand", n_users, n_items, np.array(tu, np.int32), np.array(ti, np.int32),
                  EvalRows(users, np.array(valid, np.int32),
                           np.stack([negatives(u) for u in users]).astype(np.int32)),
                  EvalRows(users, np.array(test, np.int32),
                           np.stack([negatives(u) for u in users]).astype(np.int32)))
    features = rng.standard_normal((n_items, n_features)).astype(np.float32)
    return split, features


class _Dataset(Dataset):
    def split(self, name="rand", **_):
        return self.preset_splits[name]

    def fingerprint(self):
        return None


def random_dataset(**kw):
    split, features = random_split(**kw)
    ds = _Dataset("random", split.n_users, split.n_items, split.train_users, split.train_items,
                 features, "random", preset_splits={"rand": split})
    return ds, split


def assert_seed_decides_training(backend):
    """Two AMR fits with the same seed give the same parameters bit for bit, another seed other
    ones (every backend's "same seed, same result"); returns the first model."""
    from amrlite import Model
    ds, _ = random_dataset(seed=2)
    kw = dict(backend=backend, epochs=2, batch_size=32, eval_every=0)
    a = Model("amr", seed=4, **kw).fit(ds, split="rand")
    b = Model("amr", seed=4, **kw).fit(ds, split="rand")
    c = Model("amr", seed=5, **kw).fit(ds, split="rand")
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["P"], c.params["P"])
    return a


ROOT = Path(__file__).resolve().parents[1]


def source_hits(pattern, *folders):
    """``path:line: text`` of every line of the ``.py`` files under ``folders`` (relative to
    the project root) that the regular expression ``pattern`` matches."""
    rx = re.compile(pattern)
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if rx.search(line)]


def read_model_file(path):
    """``(header, arrays)`` of a saved model ``.npz``, read with plain NumPy (not amrlite): the
    JSON header as a dict, and every other array."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(bytes(arrays.pop("header")).decode("utf-8")), arrays


def write_model_file(path, header, arrays):
    """A model ``.npz`` of ``arrays`` and ``header`` (a dict, written as JSON, or bytes,
    written as they are: a damaged header); returns ``path``."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    np.savez(path, **arrays, header=np.frombuffer(blob, dtype=np.uint8))
    return path


def read_csv(path):
    """The rows of the CSV file ``path`` (UTF-8, with a header) as dicts."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_cli(*args):
    """``amrlite ARGS`` in-process (arguments may be paths); never a traceback."""
    from click.testing import CliRunner

    from amrlite.cli import cli
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    return r


def one_line_error(r, *pieces, only=False):
    """``r`` (a click result, or a finished ``amrlite`` subprocess) failed with exit code 2, no
    traceback, and one line mentioning an error: the last, ``amrlite: error: ...``, holding every
    piece (what was loaded before may be said above it; with ``only``, nothing may be)."""
    code = r.exit_code if hasattr(r, "exit_code") else r.returncode
    text = r.output if hasattr(r, "output") else r.stderr
    assert code == 2, text
    assert "Traceback" not in text, text
    lines = [x for x in text.splitlines() if x.strip()]
    errs = [x for x in lines if "error" in x]
    assert len(errs) == 1 and errs[0] == lines[-1], text
    assert errs[0].startswith("amrlite: error: "), text
    assert not only or len(lines) == 1, text
    for p in pieces:
        assert p in errs[0], errs[0]
    return errs[0]
