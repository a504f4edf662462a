"""A warm interpreter that runs pipeline jobs in forked children, so a job does not pay ~3 s of ``import torch``.

Every adapter script starts with ``hand_over(snakemake, __file__)``. The first job of a run finds no server, starts
one in the background (it imports torch, pandas, matplotlib... once) and runs cold. Later jobs connect to it over a
user-private Unix socket; the server forks a child that adopts the job's working directory, environment, ``sys.path``,
warnings filters and standard streams, runs the script and reports its exit status; the job's own process waits and
exits with it. The child imports ``toymodels`` afresh, so edited code is always what runs. The child dies with its job
process (Snakemake cancelling, Ctrl-C or a hard kill close the socket); the server exits after ``IDLE_S`` seconds idle.

A fork is only safe from a single-threaded process in which CUDA was never initialised: the server imports with one
BLAS/OpenMP thread and no Arrow allocator thread, and before each fork checks its thread count and CUDA; if either
fails, it logs why and the job runs in its own process. The server is off by default under SLURM (a job step owns its
processes) and when the config's device is (or ``auto`` may resolve to) a GPU. ``TOYMODELS_FORKSERVER=0`` runs every
job in its own fresh interpreter, ``=1`` uses the server there too; the children run with it set to 0.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib
import os
import pickle
import random
import re
import resource
import runpy
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRELOAD = (
    "torch", "torch.nn.functional", "numpy", "pandas", "pyarrow.parquet", "safetensors.torch", "tqdm",
    "matplotlib.pyplot", "matplotlib.colors", "matplotlib.collections", "matplotlib.ticker",
    "scipy.stats", "sklearn.metrics", "sklearn.linear_model", "sklearn.cluster", "sklearn.neighbors",
    "snakemake.script", "threadpoolctl",
)
# Set in the server before it imports anything: BLAS and OpenMP pools of one thread (each child sizes its own from the
# job's OMP_NUM_THREADS), and no jemalloc background thread in Arrow's allocator.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ARROW_JEMALLOC_CONF = "JE_ARROW_MALLOC_CONF"
GPU_NODES = ("/dev/nvidiactl", "/dev/kfd")  # where one exists, ``device: auto`` may pick a GPU
IDLE_S = 30.0
MAX_PATH_BYTES = 100  # AF_UNIX socket paths are limited to 104-108 bytes
MAX_CHILDREN = 64  # a run asks for at most --cores jobs at once; past this, jobs run cold instead of piling up
PID_TIMEOUT_S = 30.0
_STATUS = struct.Struct("!i")
USAGE = re.compile(r"^toymodels job usage: wall (?P<wall_s>[\d.]+) s, cpu (?P<cpu_s>[\d.]+) s, peak rss (?P<max_rss_mb>\d+) MB$",
                   re.MULTILINE)


def enabled(config: Mapping[str, Any] | None = None) -> bool:
    """Whether this job goes to the warm server. ``TOYMODELS_FORKSERVER=0``: never; ``=1``: wherever fork exists;
    otherwise (the default) not under SLURM (``SLURM_JOB_ID`` set: the server would outlive the job step that started
    it and serve other steps' jobs outside their own) and not when ``config`` asks for a GPU (``device: cuda``, or
    ``auto`` on a machine with a GPU): GPU jobs are long enough that 3 s of imports do not matter."""
    setting = os.environ.get("TOYMODELS_FORKSERVER", "")
    if setting == "0" or not (hasattr(os, "fork") and hasattr(socket, "send_fds") and os.path.isdir("/proc/self/task")):
        return False
    if setting == "1":
        return True
    return not os.environ.get("SLURM_JOB_ID") and not _may_use_gpu(config or {})


def _may_use_gpu(config: Mapping[str, Any]) -> bool:
    device = config.get("device", "auto")
    if device == "cuda":
        return True
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    return device == "auto" and not hidden and any(os.path.exists(node) for node in GPU_NODES)


def socket_path() -> Path | None:
    """One server per user, venv (``sys.prefix``), installed distributions, toymodels checkout and version of this
    file, hash seed and SLURM job step, in a directory only this user can write; None where that is not possible."""
    key = "\0".join((sys.prefix, sys.executable, sys.version, str(Path(__file__).resolve().parent),
                      hashlib.sha1(Path(__file__).read_bytes()).hexdigest(), hash_seed(os.environ),
                      os.environ.get("SLURM_JOB_ID", ""), os.environ.get("SLURM_STEP_ID", ""), *_distributions()))
    directory = Path(tempfile.gettempdir()) / f"toymodels-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o777 != 0o700 or not directory.is_dir() or directory.is_symlink():
        return None  # someone else's, or opened up: never hand a job's streams and environment to it
    path = directory / f"{hashlib.sha1(key.encode()).hexdigest()[:12]}.sock"
    return path if len(os.fsencode(path)) <= MAX_PATH_BYTES else None


def _distributions() -> list[str]:
    """Name and version of every distribution importable from ``sys.path`` (its ``.dist-info`` folder names): the
    preloaded packages and everything they import. A listing costs ~1 ms; ``importlib.metadata.version`` reads each
    one's METADATA file (25-60 ms for the preloaded ones, per job)."""
    names = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            names += sorted(name for name in os.listdir(entry or ".") if name.endswith((".dist-info", ".egg-info")))
    return names


def hash_seed(environ: Mapping[str, str]) -> str:
    """The string-hash seed a fresh interpreter with this environment uses: ``random`` or ``PYTHONHASHSEED``'s value.
    A fork keeps its parent's, so a job is only forked from a server started with the same setting."""
    seed = environ.get("PYTHONHASHSEED", "")
    return seed if seed not in ("", "random") else "random"


def hand_over(snakemake: Any, script: str, path: Path | None = None) -> None:
    """Run this job's script in a warm child and exit with its status; return to run it here when that is not possible."""
    if not enabled(getattr(snakemake, "config", None)):
        return
    path = path or socket_path()
    if path is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(PID_TIMEOUT_S)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        _start_server(path)
        return
    try:
        request = pickle.dumps({"script": os.path.realpath(script), "snakemake": snakemake, "cwd": os.getcwd(),
                                "environ": dict(os.environ), "sys_path": list(sys.path), "warnings": warnings.filters})
    except (pickle.PicklingError, TypeError, AttributeError):  # e.g. a warnings category defined in a script
        client.close()
        return
    try:
        socket.send_fds(client, [struct.pack("!q", len(request))], [0, 1, 2])
        client.sendall(request)
        child = _receive_int(client)
    except OSError:
        child = None
    if child is None:  # the server refused (its log says why) or was shutting down: nothing ran, so run here
        client.close()
        print(f"toymodels: the job server did not take this job (see {path.with_suffix('.log')}); it runs in its "
              f"own process", file=sys.stderr, flush=True)
        return
    client.settimeout(None)

    def kill_child(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)  # the child leads its own process group: its subprocesses go too
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, kill_child)
    status = _receive_int(client)
    if status is None:
        print(f"toymodels: the job's process {child} ended without an exit status (killed?)", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _receive_int(connection: socket.socket) -> int | None:
    data = b""
    while len(data) < _STATUS.size:
        chunk = connection.recv(_STATUS.size - len(data))
        if not chunk:
            return None
        data += chunk
    return _STATUS.unpack(data)[0]


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    parts, received = [], 0
    while received < size:
        chunk = connection.recv(min(size - received, 1 << 20))
        if not chunk:
            raise ConnectionError("the job's process closed the connection before its request was complete")
        parts.append(chunk)
        received += len(chunk)
    return b"".join(parts)


def _start_server(path: Path) -> None:
    """Start the server in its own session (a Ctrl-C of this run must not kill it mid-fork); it exits if one runs.
    Failing to start one is not the job's problem: it runs here either way."""
    try:
        with open(path.with_suffix(".log"), "ab") as log:
            subprocess.Popen([sys.executable, "-m", "toymodels.forkserver", str(path)], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, start_new_session=True, close_fds=True)
    except OSError:
        pass


@dataclass(frozen=True)
class Preloaded:
    """What a child needs from the server: the warnings filters its imports added, and its string-hash seed."""

    filters: list[tuple[Any, ...]]
    hash_seed: str


def serve(path: Path, idle_s: float = IDLE_S) -> None:
    """Import the heavy modules once, single-threaded, then fork one child per connection until idle for ``idle_s``
    seconds."""
    lock = os.open(str(path.with_suffix(".lock")), os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server owns this path
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.update(SINGLE_THREADED)
    os.environ[ARROW_JEMALLOC_CONF] = ",".join(filter(None, (os.environ.get(ARROW_JEMALLOC_CONF), "background_thread:false")))
    before = list(warnings.filters)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    preloaded = Preloaded([f for f in warnings.filters if f not in before], hash_seed(os.environ))
    _log(f"started, hash seed {preloaded.hash_seed}; {fork_hazard() or 'safe to fork'}")
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    server.bind(str(path))
    os.umask(old_umask)
    server.listen(64)
    server.settimeout(1.0)
    children: set[int] = set()
    last_active = time.monotonic()
    while True:
        try:
            connection, _ = server.accept()
        except TimeoutError:
            children = _running(children)
            if children:
                last_active = time.monotonic()
            elif time.monotonic() - last_active > idle_s:
                break
            continue
        children = _running(children)
        if len(children) >= MAX_CHILDREN:
            _log(f"{len(children)} jobs running: this one runs in its own process")
            connection.close()
            continue
        child = _fork_job(connection, server, lock, preloaded)
        if child is not None:
            children.add(child)
        last_active = time.monotonic()
    path.unlink(missing_ok=True)  # new clients now start a new server; serve the ones already queued
    server.setblocking(False)
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            break
        connection.setblocking(True)
        _fork_job(connection, server, lock, preloaded)
    server.close()
    os.close(lock)


def _running(children: set[int]) -> set[int]:
    """Reap the children that have exited; the rest."""
    return {pid for pid in children if os.waitpid(pid, os.WNOHANG) == (0, 0)}


def fork_hazard() -> str | None:
    """Why forking this process now would be unsafe, or None. A fork copies only the calling thread: a lock another
    thread held (malloc's, a BLAS or OpenMP pool's) stays locked in the child forever, and a child cannot use a CUDA
    context its parent created."""
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        return "its threads cannot be counted (no /proc/self/task)"
    if threads != 1:
        return f"{threads} threads run in the server"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is initialised in the server"
    return None


def _fork_job(connection: socket.socket, server: socket.socket, lock: int, preloaded: Preloaded) -> int | None:
    """Fork a child for this connection, or, where that is unsafe, close it (its job runs in its own process)."""
    hazard = fork_hazard()
    if hazard:
        _log(f"not forking ({hazard}): the job runs in its own process")
        connection.close()
        return None
    pid = os.fork()
    if pid == 0:
        server.close()
        os.close(lock)
        _run_job(connection, preloaded)
    connection.close()
    return pid


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} toymodels job server {os.getpid()}: {message}", file=sys.stderr, flush=True)


def _run_job(connection: socket.socket, preloaded: Preloaded) -> None:
    """In the forked child: become the job's process, run its script, send the exit status, never return.

    Until the child's pid is sent nothing of the job has run: a failure (or a job that needs another hash seed) then
    closes the connection with a line in the server's log, and the job runs in its own process instead."""
    os.setpgid(0, 0)  # a process group of its own, so that killing the job kills what the script started too
    try:
        header, fds, _, _ = socket.recv_fds(connection, 8, 3)
        request = pickle.loads(_receive_exactly(connection, struct.unpack("!q", header)[0]))
        if hash_seed(request["environ"]) != preloaded.hash_seed:
            _log(f"not running a job with hash seed {hash_seed(request['environ'])} in a child of a server with "
                 f"{preloaded.hash_seed}: it runs in its own process")
            os._exit(1)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["environ"])
        os.environ["TOYMODELS_FORKSERVER"] = "0"  # the script's own hand_over, and any process it starts, run here
        sys.path[:] = request["sys_path"]
        sys.argv = [request["script"]]
        _become_fresh(preloaded.filters + [f for f in request["warnings"] if f not in preloaded.filters])
        connection.sendall(_STATUS.pack(os.getpid()))
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os.register_at_fork(after_in_child=connection.close)  # a process the script forks must not hold the job open
    threading.Thread(target=_exit_with_client, args=(connection,), daemon=True).start()
    status = 1
    try:
        started = time.monotonic()
        status = _run_script(request["script"], request["snakemake"])
        _finish_like_an_interpreter()
        _log_usage(request["snakemake"], time.monotonic() - started)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            connection.sendall(_STATUS.pack(status))
        finally:
            os._exit(status)


def _become_fresh(filters: list[tuple[Any, ...]]) -> None:
    """What a fresh interpreter would differ in: thread pools sized from the job's OMP_NUM_THREADS (Snakemake sets it
    to the job's threads; unset, all cores), global random states seeded from the OS, not copied from the server, the
    job's warnings filters (``filters``: those the preloaded imports added, then the job process's own), and exit
    handlers: none of the server's (the string-hash seed cannot change after start-up: :func:`hash_seed`)."""
    warnings.filters[:] = filters
    warnings._filters_mutated()  # forget which warnings the server's modules have already shown
    _fresh_exit_handlers()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    count = max(1, int(threads)) if threads.isdigit() else os.cpu_count() or 1
    if "threadpoolctl" in sys.modules:  # numpy's and scipy's BLAS, scikit-learn's OpenMP
        sys.modules["threadpoolctl"].threadpool_limits(count)
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
        sys.modules["torch"].seed()


def _fresh_exit_handlers() -> None:
    """Drop the server's atexit handlers and atexit finalizers. Two of the standard library's own, registered once per
    process when the server imported their modules, are registered again, as the job's imports would in a fresh
    interpreter: logging's flush and multiprocessing's join of the job's child processes; ``weakref.finalize``
    registers its hook again with the job's first finalizer."""
    atexit._clear()
    for info in weakref.finalize._registry.values():
        info.atexit = False
    weakref.finalize._registered_with_atexit = False
    for module, handler in (("logging", "shutdown"), ("multiprocessing.util", "_exit_function")):
        if module in sys.modules:
            atexit.register(getattr(sys.modules[module], handler))


def _finish_like_an_interpreter() -> None:
    """Wait for the script's non-daemon threads and run its atexit handlers, as the end of a Python process does."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()


def _log_usage(snakemake: Any, wall_s: float) -> None:
    """Snakemake's benchmark sees only the waiting job process: append the child's own cost to the job's log."""
    logs = list(getattr(snakemake, "log", None) or [])
    if not logs:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(logs[0], "a") as handle:
        handle.write(f"toymodels job usage: wall {wall_s:.2f} s, cpu {usage.ru_utime + usage.ru_stime:.2f} s, "
                     f"peak rss {usage.ru_maxrss // 1024} MB\n")


def read_usage(log_text: str) -> dict[str, float] | None:
    """The usage line :func:`_log_usage` wrote into a job's log (the last one), or None for a job that ran cold."""
    matches = list(USAGE.finditer(log_text))
    return {key: float(value) for key, value in matches[-1].groupdict().items()} if matches else None


def _exit_with_client(connection: socket.socket) -> None:
    """The job's process closing the socket means it was killed or cancelled: stop at once, with everything the
    script started, as a killed job would."""
    while True:
        try:
            if not connection.recv(1):
                break
        except OSError:
            break
    os.killpg(0, signal.SIGKILL)


def _run_script(script: str, snakemake: Any) -> int:
    try:
        runpy.run_path(script, init_globals={"snakemake": snakemake}, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    serve(Path(sys.argv[1]), *map(float, sys.argv[2:3]))
