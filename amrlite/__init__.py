"""amrlite: Adversarial Multimedia Recommendation (Tang et al., TKDE 2019) from scratch.

POP, MF-BPR, DUIF, VBPR (Eq. 4 and He & McAuley forms) and AMR with hand-derived gradients, a
NumPy reference backend, Numba CPU kernels and CuPy GPU kernels.
"""
from .version import __version__  # noqa: E402,F401

from .errors import AmrliteError  # noqa: E402
from .containers import Dataset, EvalRows, Split  # noqa: E402
from . import splits  # noqa: E402,F401
from .data import load_dataset  # noqa: E402
from .models import ModelSpec  # noqa: E402
from .train import TrainConfig  # noqa: E402
from .recommender import Model, evaluate, model_data, trained_epochs  # noqa: E402

__all__ = ["AmrliteError", "Dataset", "EvalRows", "Split", "ModelSpec", "TrainConfig", "Model",
           "evaluate", "load_dataset", "model_data", "trained_epochs", "__version__"]
