"""The one progress mechanism of amrlite: training epochs (:func:`amrlite.train.run_epochs`),
feature batches (:mod:`amrlite.features.extract`) and the experiment engine's tasks
(:mod:`amrlite.experiments.engine`) all report through :class:`Progress`.

On a terminal it is a `tqdm <https://tqdm.github.io>`_ bar on stderr (the bar implicit and
Cornac use); where stderr is not a terminal (a log file, a pipe, CI), or when the caller routes
its messages through ``write``, it says one summary line when it closes instead of redrawing a
bar into the log::

    VBPR: 300/300 in 41s, loss 0.1234  best NDCG@10 0.4120

``enabled=False`` (the CLI's ``-q``) prints nothing.
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm


def _stderr_line(msg):
    print(msg, file=sys.stderr, flush=True)


class Progress:
    """Progress of ``total`` steps called ``label``; a context manager (closes on exit).

    Parameters
    ----------
    total : int
        Steps expected (epochs, items, tasks). Nothing is shown when it is 0.
    label : str
        What is counted ("MF-BPR", "image features", "[local, 2 processes] tasks").
    enabled : bool
        False: silent.
    unit : str
        The bar's unit ("it", "epoch", "item", "task").
    write : callable, optional
        ``write(line)`` receives the summary line; given one, no bar is drawn (the caller's
        log owns the stream). Default: a bar on a terminal, else the line on stderr.
    """

    def __init__(self, total, label, *, enabled=True, unit="it", write=None):
        self.total, self.label, self.done, self.info = int(total), label, 0, ""
        self.enabled = bool(enabled) and self.total > 0
        self._write = write or _stderr_line
        self._t0 = time.perf_counter()
        self._bar = None
        if self.enabled and write is None and sys.stderr.isatty():
            self._bar = tqdm(total=self.total, desc=label, unit=unit, file=sys.stderr,
                             dynamic_ncols=True)

    def update(self, n=1, info=None):
        """``n`` more steps done; ``info`` (optional) replaces the text shown after the count
        (running loss, failures)."""
        self.done += n
        if info is not None:
            self.info = info
        if self._bar is not None:
            if info is not None:
                self._bar.set_postfix_str(info, refresh=False)
            self._bar.update(n)

    def summary(self) -> str:
        """``label: done/total in Ns[, info]``."""
        line = (f"{self.label}: {self.done}/{self.total} in "
                f"{time.perf_counter() - self._t0:.0f}s")
        return line + (f", {self.info}" if self.info else "")

    def close(self):
        """Close the bar, or say the summary line; once (a second call does nothing)."""
        if not self.enabled:
            return
        self.enabled = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            self._write(self.summary())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
