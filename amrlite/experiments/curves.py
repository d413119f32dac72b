"""Training curves (Fig. 3): validation *and* test HR@10/NDCG@10 every N epochs of a fit
(:func:`fit_with_curve`, through the public ``Model.fit(callback=...)`` hook), and continued
VBPR vs AMR from the same checkpoint with the MF-BPR line (:func:`training_curves`)."""
from __future__ import annotations

from pathlib import Path

from ..backends import get_backend
from ..evaluation import evaluate_params
from ..recommender import Model, evaluate
from ..train import TrainConfig
from .config import SUMMARY
from .store import load_data


def _summary(metrics):
    return {k: float(metrics[k]) for k in SUMMARY}


def _curve_every(epochs, every):
    """The evaluation period, lowered if needed to the greatest divisor of ``epochs`` not above
    ``every``, so that the last epoch is evaluated too."""
    if epochs % every:
        every = max(d for d in range(1, every + 1) if epochs % d == 0)
    return every


def fit_with_curve(kind, ds, sp, *, init=None, config, backend="auto", select="final",
                   progress=False):
    """Fit ``kind`` with validation and test metrics every ``config['eval_every']`` epochs.

    Parameters
    ----------
    kind : str
        The model kind (``mf``, ``duif``, ``vbpr``, ``amr``).
    ds : Dataset
        The data set (its features are used by content models).
    sp : Split
        The split; without validation rows (or with ``eval_every`` 0) no curve is recorded.
    init : Model, optional
        The checkpoint whose matching blocks start the model.
    config : dict
        :class:`amrlite.train.TrainConfig` fields; ``eval_every`` is lowered to a divisor of
        ``epochs`` when needed, so that the last epoch is always evaluated.
    backend : str
        The backend of the fit and of the test evaluations.
    select : {"final", "valid"}
        Keep the last epoch's parameters, or the best by validation NDCG@10.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    tuple
        ``(model, curve)`` with ``curve = {"epoch": [...], "valid": [...], "test": [...]}``,
        one ``{"HR@10", "NDCG@10"}`` dict per evaluated epoch in ``valid`` and ``test``.
    """
    config = dict(config)
    every = int(config.get("eval_every") or 0)
    curve = {"epoch": [], "valid": [], "test": []}
    if sp.valid is None or every <= 0:
        config["eval_every"] = 0
        m = Model(kind, backend=backend, **config).fit(ds, split=sp, init=init, progress=progress)
        return m, curve
    config["eval_every"] = _curve_every(int(config["epochs"]), every)
    m = Model(kind, backend=backend, **config)
    features = getattr(ds, "features", None)
    ranker = get_backend(backend)

    def record(info):
        if info.valid is not None:
            test = evaluate_params(m.spec, info.params(), features, sp, sp.test,
                                   id_items=m.warm, backend=ranker)["all"]
            curve["epoch"].append(info.epoch)
            curve["valid"].append(_summary(info.valid))
            curve["test"].append(_summary(test))
        return False

    m.fit(ds, split=sp, init=init, progress=progress, callback=record,
          keep="last" if select == "final" else "best")
    return m, curve


def training_curves(dataset, split="loo", *, init, epochs, every=10, vbpr_config=None,
                    amr_config=None, mf_model=None, backend="auto", select="final",
                    progress=False):
    """Fig. 3: continued VBPR and AMR from the same checkpoint, with their curves.

    Parameters
    ----------
    dataset : Dataset or str or Path or None
        The data (a folder path; None is the synthetic set).
    split : str or Split
        The split.
    init : Model or str or Path
        The VBPR checkpoint both runs start from.
    epochs : int
        Epochs of each run.
    every : int
        Validation and test metrics every ``every`` epochs.
    vbpr_config, amr_config : dict, optional
        :class:`amrlite.train.TrainConfig` fields of each run (``epochs`` and ``eval_every``
        are set from ``epochs``/``every``).
    mf_model : Model or str or Path, optional
        MF-BPR, whose test metrics are drawn as a horizontal line.
    backend : str
        The backend of both runs.
    select : {"final", "valid"}
        Which parameters each returned model keeps (see :func:`fit_with_curve`).
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    dict
        ``{"vbpr": curve, "amr": curve, "mf": {"HR@10", "NDCG@10"} | None,
        "models": {"vbpr": Model, "amr": Model}}``.
    """
    ds = load_data(dataset)
    sp = ds.split(split)
    init = Model.load(init) if isinstance(init, (str, Path)) else init
    out = {"models": {}}
    for kind, extra in (("vbpr", vbpr_config), ("amr", amr_config)):
        cfg = TrainConfig.from_dict(dict(extra or {}, epochs=epochs, eval_every=every)).to_dict()
        m, curve = fit_with_curve(kind, ds, sp, init=init, config=cfg, backend=backend,
                                  select=select, progress=progress)
        out[kind] = curve
        out["models"][kind] = m
    out["mf"] = None
    if mf_model is not None:
        mf_model = Model.load(mf_model) if isinstance(mf_model, (str, Path)) else mf_model
        out["mf"] = _summary(evaluate(mf_model, ds, sp))
    return out
