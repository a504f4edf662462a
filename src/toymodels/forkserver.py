"""A warm interpreter that runs pipeline jobs in forked children, so a job does not pay ~3 s of ``import torch``.

Every adapter script starts with ``hand_over(snakemake, __file__)``. The first job of a run finds no server, starts
one in the background (it imports torch, pandas, matplotlib... once) and runs cold. Later jobs connect to it over a
user-private Unix socket; the server forks a child that adopts the job's working directory, environment, ``sys.path``
and standard streams, runs the script and reports its exit status; the job's own process waits and exits with it.
The child imports ``toymodels`` afresh, so edited code is always what runs. The child dies with its job process
(Snakemake cancelling, Ctrl-C or a hard kill close the socket); the server exits after ``IDLE_S`` seconds idle.
Set ``TOYMODELS_FORKSERVER=0`` to run every job in its own fresh interpreter; the children run with it set.
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
from pathlib import Path
from typing import Any

PRELOAD = (
    "torch", "torch.nn.functional", "numpy", "pandas", "pyarrow.parquet", "safetensors.torch", "tqdm",
    "matplotlib.pyplot", "matplotlib.colors", "matplotlib.collections", "matplotlib.ticker",
    "scipy.stats", "sklearn.metrics", "sklearn.linear_model", "sklearn.cluster", "sklearn.neighbors",
    "snakemake.script", "threadpoolctl",
)
IDLE_S = 30.0
MAX_PATH_BYTES = 100  # AF_UNIX socket paths are limited to 104-108 bytes
MAX_CHILDREN = 64  # a run asks for at most --cores jobs at once; past this, jobs run cold instead of piling up
PID_TIMEOUT_S = 30.0
_STATUS = struct.Struct("!i")
USAGE = re.compile(r"^toymodels job usage: wall (?P<wall_s>[\d.]+) s, cpu (?P<cpu_s>[\d.]+) s, peak rss (?P<max_rss_mb>\d+) MB$",
                   re.MULTILINE)


def enabled() -> bool:
    """Whether jobs go to the warm server: on unless ``TOYMODELS_FORKSERVER=0``, and only where fork exists."""
    return os.environ.get("TOYMODELS_FORKSERVER", "1") != "0" and hasattr(os, "fork") and hasattr(socket, "send_fds")


def socket_path() -> Path | None:
    """One server per user, interpreter, toymodels checkout and version of this file, and SLURM job (a job's children
    must stay in its cgroup), in a directory only this user can write; None where that is not possible."""
    key = "|".join((os.path.realpath(sys.executable), str(Path(__file__).resolve().parent), sys.version,
                    hashlib.sha1(Path(__file__).read_bytes()).hexdigest(), os.environ.get("SLURM_JOB_ID", "")))
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


def hand_over(snakemake: Any, script: str, path: Path | None = None) -> None:
    """Run this job's script in a warm child and exit with its status; return to run it here when that is not possible."""
    if not enabled():
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
    request = pickle.dumps({"script": os.path.realpath(script), "snakemake": snakemake, "cwd": os.getcwd(),
                            "environ": dict(os.environ), "sys_path": list(sys.path)})
    try:
        socket.send_fds(client, [struct.pack("!q", len(request))], [0, 1, 2])
        client.sendall(request)
        child = _receive_int(client)
    except OSError:
        child = None
    if child is None:  # the server was shutting down, or the child could not set up: nothing ran, so run here
        client.close()
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


def serve(path: Path, idle_s: float = IDLE_S) -> None:
    """Import the heavy modules once, then fork one child per connection until idle for ``idle_s`` seconds."""
    lock = os.open(str(path.with_suffix(".lock")), os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server owns this path
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
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
            connection.close()  # its job runs in its own process
            continue
        children.add(_fork_job(connection, server, lock))
        last_active = time.monotonic()
    path.unlink(missing_ok=True)  # new clients now start a new server; serve the ones already queued
    server.setblocking(False)
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            break
        connection.setblocking(True)
        _fork_job(connection, server, lock)
    server.close()
    os.close(lock)


def _running(children: set[int]) -> set[int]:
    """Reap the children that have exited; the rest."""
    return {pid for pid in children if os.waitpid(pid, os.WNOHANG) == (0, 0)}


def _fork_job(connection: socket.socket, server: socket.socket, lock: int) -> int:
    pid = os.fork()
    if pid == 0:
        server.close()
        os.close(lock)
        _run_job(connection)
    connection.close()
    return pid


def _run_job(connection: socket.socket) -> None:
    """In the forked child: become the job's process, run its script, send the exit status, never return.

    Until the child's pid is sent nothing of the job has run: a failure then closes the connection without a word,
    and the job runs in its own process instead."""
    os.setpgid(0, 0)  # a process group of its own, so that killing the job kills what the script started too
    try:
        header, fds, _, _ = socket.recv_fds(connection, 8, 3)
        payload = _receive_exactly(connection, struct.unpack("!q", header)[0])
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        request = pickle.loads(payload)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["environ"])
        os.environ["TOYMODELS_FORKSERVER"] = "0"  # the script's own hand_over, and any process it starts, run here
        sys.path[:] = request["sys_path"]
        sys.argv = [request["script"]]
        _become_fresh()
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


def _become_fresh() -> None:
    """What a fresh interpreter would differ in: thread pools sized from the job's OMP_NUM_THREADS (Snakemake sets it
    to the job's threads; unset, all cores), and global random states seeded from the OS, not copied from the server."""
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
