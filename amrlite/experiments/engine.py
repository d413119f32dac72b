"""Where the independent tasks of an experiment run: :func:`run_tasks` with ``engine="local"``
(this process, or spawned worker processes: the default) or ``engine="ray"`` (a Ray cluster: a
local one started here, or an existing one at ``address``; the optional extra ``.[cluster]``).

A task is a picklable function applied to a job dict: one seed's model chain (trained,
evaluated, tested and attacked: :func:`amrlite.experiments.pipeline._seed_chain_job`) or one
sweep setting of one seed (:func:`amrlite.experiments.sweep._sweep_job`), for one split and
one data set. Whatever the engine, the task runs the same code (in a worker with one
BLAS/OpenMP/Numba thread, :data:`THREAD_ENV`; in this process with its own threads, which
gives the same numbers: the kernels do not depend on the thread count) and returns its
result; the *driver* stores each result as it arrives (``on_result``), so an interrupted or
partly failed run keeps everything that finished, and a rerun submits only what is missing.

With Ray:

* the data set and every distinct checkpoint are put into the object store once
  (``ray.put``) and passed to the tasks by reference: each node receives them once, not once
  per task; no file system has to be shared between the driver and the workers;
* each task asks for one CPU, and for one GPU when the cluster has GPUs and the backend is
  ``auto`` or ``cupy`` (Ray then pins ``CUDA_VISIBLE_DEVICES`` to that GPU, and ``auto`` in the
  worker resolves to cupy): one task per GPU;
* a task whose worker process dies (killed, out of memory, node lost) is retried by Ray
  (``max_retries``); a task that raises is not retried (the same inputs raise again) and is
  reported as failed, after the others have finished.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import socket
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import AmrliteError, braced, option_error
from ..jsonio import write_bytes
from ..progress import Progress
from .store import load_data

ENGINES = ("local", "ray")

#: the environment of every worker: one thread per task, so that results do not depend on
#: how many tasks share a machine (and are the same in a worker as in this process)
THREAD_ENV = {n: "1" for n in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                               "MKL_NUM_THREADS")}

#: retries of a task whose worker died (Ray's default for tasks is 3, stated here)
MAX_RETRIES = 3

#: the Ray task id while a Ray worker runs a task here (:func:`_ray_task`), else None
_RAY_TASK = None

#: seconds a cluster address (``--address``) has to accept a connection before the run stops
#: with an error (Ray itself keeps retrying for minutes)
CONNECT_TIMEOUT = 10.0


def where():
    """Where the calling code runs: ``{"host", "pid", "ray_task"}``, ``ray_task`` being the id
    Ray gave the task when it runs in a Ray worker (None elsewhere: this process or a local
    worker)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "ray_task": _RAY_TASK}


@contextmanager
def _env(**values):
    saved = {n: os.environ.get(n) for n in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def single_threaded_children():
    """Spawned workers (and a Ray cluster started here) inherit :data:`THREAD_ENV`."""
    return _env(**THREAD_ENV)


class TaskFailed(AmrliteError):
    """Some tasks failed (after the others finished and were stored); ``failures`` lists
    ``(job name, error text)``."""

    def __init__(self, failures, n_total):
        self.failures = failures
        names = ", ".join(n for n, _ in failures[:5]) + (" ..." if len(failures) > 5 else "")
        super().__init__(f"{len(failures)} of {n_total} task(s) failed ({names}); every "
                         "finished task is stored and a rerun redoes only the failed ones. "
                         f"First error: {failures[0][1].strip().splitlines()[-1]}")


def _task_bar(engine, total, slots, enabled, log):
    """The tasks' :class:`~amrlite.progress.Progress`: done / total, with the running, queued
    and failed counts after each task (a bar on a terminal, else one line through ``log``)."""
    return _TaskCounts(Progress(total, f"[{engine}] tasks", enabled=enabled, unit="task",
                                write=log), max(1, slots))


class _TaskCounts:
    """Counts done and failed tasks into a :class:`~amrlite.progress.Progress`."""

    def __init__(self, bar, slots):
        self.bar, self.slots, self.failed = bar, slots, 0

    def update(self, ok):
        self.failed += not ok
        left = self.bar.total - self.bar.done - 1
        running = min(left, self.slots)
        self.bar.update(1, f"running {running}, queued {left - running}, failed {self.failed}")

    def close(self):
        self.bar.close()


def run_tasks(fn, jobs, *, engine="local", address=None, processes=None, progress=True,
              on_result=None, log=None, gpu=None):
    """Run ``fn(job)`` for every job; return the results in completion order.

    Parameters
    ----------
    fn : callable
        A module-level function (picklable); ``fn(job, data, init)`` with the job's
        ``"data"`` and ``"init"`` entries passed separately (the engine ships them).
    jobs : list of dict
        Each with ``"name"``, ``"data"`` (a Dataset or a folder path) and ``"init"`` (a
        checkpoint path).
    engine : {"local", "ray"}
        ``local``: ``processes`` spawned workers (1: this process). ``ray``: Ray tasks.
    address : str, optional
        Ray: the cluster to join (``auto``, ``HOST:6379``, ``ray://HOST:10001``); default: a
        local cluster of ``processes`` CPUs (one per core) started here and stopped after.
    processes : int, optional
        Local workers / CPUs of the local Ray cluster (default: one per core).
    progress : bool
        Log done / running / failed after every task.
    on_result : callable, optional
        ``on_result(job, result)`` as each result arrives (the driver stores it here).
    log : callable, optional
        Where progress lines go (default: stderr).
    gpu : bool, optional
        Ray: ask one GPU per task (default: when the cluster has GPUs).

    Raises
    ------
    TaskFailed
        When some tasks failed; every other task has finished and was passed to ``on_result``.
    """
    if engine not in ENGINES:
        raise option_error("engine", f"expected one of {', '.join(ENGINES)}", repr(engine))
    if not jobs:
        return []
    if engine == "ray":
        return _run_ray(fn, jobs, address, processes, progress, on_result, log, gpu)
    if address:
        raise option_error((), "{address} is for {engine} ray (the local engine has no cluster)",
                           names=("address", "engine"))
    return _run_local(fn, jobs, processes, progress, on_result, log)


def _call(fn, job):
    return fn(job, job["data"], job["init"])


def _run_local(fn, jobs, processes, progress, on_result, log):
    n_proc = max(1, min(int(processes or (os.cpu_count() or 1)), len(jobs)))
    bar = _task_bar(f"local, {n_proc} process{'es' if n_proc > 1 else ''}", len(jobs), n_proc,
                    progress, log)
    out = _Collector(bar, on_result)
    if n_proc == 1:
        for job in jobs:
            out.take(job, lambda: _call(fn, job))
        return out.result(len(jobs))
    with single_threaded_children(), ProcessPoolExecutor(
            max_workers=n_proc, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_call, fn, job): job for job in jobs}
        for fut in as_completed(futures):
            out.take(futures[fut], fut.result)
    return out.result(len(jobs))


class _Collector:
    """The results as they arrive: passed to ``on_result`` and counted; a task that raised is
    recorded (the others go on) and :meth:`result` raises :class:`TaskFailed` at the end."""

    def __init__(self, bar, on_result):
        self.bar, self.on_result = bar, on_result
        self.done, self.failures = [], []

    def take(self, job, get):
        try:
            res = get()
        except Exception as exc:                 # noqa: BLE001 - reported, then raised
            self.failures.append((job["name"], "".join(traceback.format_exception(exc))))
            self.bar.update(False)
            return
        if self.on_result is not None:
            self.on_result(job, res)
        self.done.append(res)
        self.bar.update(True)

    def result(self, n_total):
        self.bar.close()
        if self.failures:
            raise TaskFailed(self.failures, n_total)
        return self.done


# ---------------------------------------------------------------------------- ray
def _import_ray():
    try:
        import ray
    except ImportError:
        raise option_error((), '{engine} ray needs Ray: pip install -e ".[cluster]"',
                           names=("engine",)) from None
    return ray


def _host_port(address):
    """``(host, port)`` of a Ray address (``HOST:PORT``, ``ray://HOST:PORT``, ``[v6]:PORT``;
    the port defaults to Ray's: 6379, or 10001 for a ``ray://`` client address)."""
    text, port = address, 6379
    if text.startswith("ray://"):
        text, port = text[len("ray://"):], 10001
    text = text.rstrip("/")
    host, sep, tail = text.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):   # no port (or bare IPv6)
        host, tail = text, str(port)
    if not tail.isdigit() or not host:
        raise option_error("address", "expected HOST:PORT (e.g. 10.0.0.5:6379 or "
                           "ray://10.0.0.5:10001) or auto", address)
    return host.strip("[]"), int(tail)


def check_address(address, timeout=None):
    """Fail fast where nothing answers: a TCP connection to ``address`` must be accepted within
    ``timeout`` seconds (default :data:`CONNECT_TIMEOUT`; refused connections are retried until
    then), else a one-line :class:`AmrliteError` naming the address. ``auto`` (the cluster this
    machine joined) is left to Ray, which says at once when there is none."""
    if not address or address == "auto":
        return
    host, port = _host_port(address)
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(
                    (host, port), timeout=max(0.1, min(3.0, deadline - time.monotonic()))):
                return
        except socket.gaierror:
            raise option_error("address", f"unknown host {host!r}", address) from None
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
        if time.monotonic() >= deadline:
            raise option_error("address", braced(f"nothing answers at {host}:{port} "
                               f"({why.lower()}, {timeout:g} s); start the cluster there ")
                               + "(ray start --head) or leave {address} out for a local one",
                               address, names=("address",))
        time.sleep(0.25)


@contextmanager
def ray_cluster(address=None, processes=None):
    """Ray, connected: to ``address``, to the cluster this process already joined, or to a
    local cluster of ``processes`` CPUs started here (and shut down on exit)."""
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        check_address(address)
        try:
            ray.init(address=address, runtime_env={"env_vars": dict(THREAD_ENV)}, **kw)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise option_error("address", f"cannot join the Ray cluster ({first})",
                               address) from None
    else:
        # Ray runs its workers at nice 15 by default (to keep its daemons responsive); on a
        # machine shared with other processes that starves the tasks (3-10x slower here),
        # so a cluster started here runs them at the priority of the local engine's workers
        with single_threaded_children(), _env(RAY_worker_niceness="0"):
            ray.init(num_cpus=int(processes or (os.cpu_count() or 1)),
                     object_store_memory=256 * 2 ** 20, **kw)
    try:
        yield ray
    finally:
        ray.shutdown()


class _Session:
    """An open :func:`session`: what leaves the cluster at its end, and the data sets already
    in the object store (``{key: (data, ref)}``, the data kept alive with its reference)."""

    def __init__(self, stack):
        self.stack, self.data = stack, {}


#: the open :func:`session` contexts (innermost last)
_SESSIONS = []


@contextmanager
def session(engine, address=None, processes=None):
    """A context in which several :func:`run_tasks` calls share one engine: for Ray, the first
    call that has tasks joins (or starts) the cluster, the later ones use it, and it is left at
    the end of the context, not after each call (a local Ray cluster takes seconds to start);
    a data set put into the object store by one call is passed by reference to the later
    ones, not put again. Nothing for the local engine."""
    if engine != "ray":
        yield
        return
    with ExitStack() as stack:
        _SESSIONS.append(_Session(stack))
        try:
            yield
        finally:
            _SESSIONS.pop()


@contextmanager
def _connected(address, processes):
    """Ray, connected for one :func:`run_tasks` call, and where its data references go:
    through the open :func:`session` (which leaves the cluster at its end and keeps the
    references), else through :func:`ray_cluster` for this call alone."""
    ray = _import_ray()
    if _SESSIONS:
        sess = _SESSIONS[-1]
        if not ray.is_initialized():
            sess.stack.enter_context(ray_cluster(address, processes))
        yield ray, sess.data
        return
    with ray_cluster(address, processes) as ray:
        yield ray, {}


def _ray_task(fn, job, data, init_blob):
    """In a Ray worker: the checkpoint arrives as bytes (object store) and is written to a
    temporary directory of this task, removed when it ends (a killed worker leaves it to the
    system's temporary-file cleaning); then ``fn`` as anywhere else (with :func:`where` telling
    it the Ray task id)."""
    global _RAY_TASK
    import ray
    with tempfile.TemporaryDirectory(prefix="amrlite-task-") as tmp:
        init = None
        if init_blob is not None:
            init = str(Path(tmp) / "init.npz")
            write_bytes(Path(init), init_blob)
        _RAY_TASK = ray.get_runtime_context().get_task_id()
        try:
            return fn(job, data, init)
        finally:
            _RAY_TASK = None


def _run_ray(fn, jobs, address, processes, progress, on_result, log, gpu):
    with _connected(address, processes) as (ray, data_refs):
        res_total = ray.cluster_resources()
        if gpu is None:
            gpu = res_total.get("GPU", 0) > 0 and jobs[0].get("backend") in ("auto", "cupy")
        slots = int(res_total.get("GPU", 0)) if gpu else int(res_total.get("CPU", 1))
        task = ray.remote(_ray_task).options(num_cpus=1, num_gpus=1 if gpu else 0,
                                             max_retries=MAX_RETRIES, retry_exceptions=False)
        # the data (once per session) and each checkpoint go into the object store once
        init_refs, pending = {}, {}
        for job in jobs:
            d = job["data"]
            dkey = d if isinstance(d, str) else id(d)
            if dkey not in data_refs:
                data_refs[dkey] = (d, ray.put(load_data(d)))
            ikey = job["init"]
            if ikey is not None and ikey not in init_refs:
                init_refs[ikey] = ray.put(Path(ikey).read_bytes())
            slim = {k: v for k, v in job.items() if k not in ("data", "init")}
            ref = task.remote(fn, dict(slim, data=None, init=None), data_refs[dkey][1],
                              init_refs.get(ikey))
            pending[ref] = job
        bar = _task_bar(f"ray, {slots} {'GPU' if gpu else 'CPU'} slot(s)", len(jobs), slots,
                        progress, log)
        out = _Collector(bar, on_result)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                out.take(pending.pop(ref), lambda: ray.get(ref))
    return out.result(len(jobs))
