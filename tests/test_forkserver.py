"""The warm job server: a handed-over script runs as the job would (cwd, environment, streams, exit status, hash seed,
warnings filters, exit handlers), dies with its job, and a job runs in its own interpreter when the server is off,
absent, threaded, has CUDA initialised or has another hash seed; one server per venv, and off under SLURM and on GPUs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from toymodels import forkserver
from toymodels.forkserver import enabled, hand_over, read_usage, socket_path

JOB = """
import os, sys, time
from pathlib import Path
from toymodels.forkserver import hand_over
print("job", os.getpid(), flush=True)
hand_over(snakemake, __file__, Path(sys.argv[1]) if len(sys.argv) > 1 else None)
print("runs in", os.getpid(), "cwd", os.getcwd(), "marker", os.environ.get("JOB_MARKER"), "arg", snakemake.arg, flush=True)
print("to stderr", file=sys.stderr, flush=True)
if snakemake.sleep:
    Path("child.pid").write_text(str(os.getpid()))
    time.sleep(snakemake.sleep)
sys.exit(snakemake.status)
"""


@pytest.fixture(autouse=True)
def local_cpu_run(monkeypatch):
    """Where the server is on by default: outside SLURM, with the GPUs (if any) not hidden, the switch unset."""
    for name in ("SLURM_JOB_ID", "SLURM_STEP_ID", "TOYMODELS_FORKSERVER", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_server(path: Path, setup: str = "", **env: str) -> subprocess.Popen:
    """A server on ``path`` (it would idle out after 60 s) that first runs ``setup``, logging where clients say."""
    source = f"import sys\nfrom pathlib import Path\n{setup}\nfrom toymodels.forkserver import serve\nserve(Path(sys.argv[1]), 60)\n"
    with open(path.with_suffix(".log"), "ab") as log:
        process = subprocess.Popen([sys.executable, "-c", source, str(path)], stdout=log, stderr=log, env={**os.environ, **env})
    wait_for(path.exists)
    return process


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    """A server on a private socket for this module's tests; stopped after them."""
    path = tmp_path_factory.mktemp("server") / "s.sock"
    process = start_server(path)
    yield process, path
    process.kill()
    process.wait()


@pytest.fixture
def server(server_process) -> Path:
    return server_process[1]


def runs_in(out: str) -> list[str]:
    """The words of the line the script body printed (the child prints its own "job" line first)."""
    return next(line.split() for line in out.splitlines() if line.startswith("runs in"))


def run_job(tmp_path: Path, path: Path, status: int = 0, sleep: float = 0, **popen) -> subprocess.Popen:
    """Start a process that plays a Snakemake job (its ``snakemake`` object a namespace with a log, its script ``JOB``)."""
    script = tmp_path / "job.py"
    script.write_text(JOB)
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    runner = (f"from types import SimpleNamespace\n"
              f"snakemake = SimpleNamespace(arg='value', status={status}, sleep={sleep}, log=['job.log'], config={{'device': 'cpu'}})\n"
              f"__file__ = {str(script)!r}\n" + JOB)
    env = {**os.environ, "JOB_MARKER": "from-the-job"}
    return subprocess.Popen([sys.executable, "-c", runner, str(path)], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_handed_over_script_runs_in_a_child_as_the_job_would(tmp_path, server):
    job = run_job(tmp_path, server, status=3)
    out, err = job.communicate(timeout=60)
    assert job.returncode == 3
    job_pid, line = int(out.split()[1]), runs_in(out)
    assert int(line[2]) != job_pid  # a forked child, not the job's interpreter
    assert line[3:] == ["cwd", str(tmp_path / "work"), "marker", "from-the-job", "arg", "value"]
    assert "to stderr" in err
    usage = read_usage((tmp_path / "work" / "job.log").read_text())  # what Snakemake's benchmark cannot see
    assert usage is not None and 0 < usage["max_rss_mb"] < 4096 and usage["cpu_s"] >= 0 and usage["wall_s"] >= 0


def test_a_failing_script_reports_its_traceback_and_status_1(tmp_path, server):
    script = tmp_path / "fail.py"
    script.write_text("raise ValueError('bad cell')\n")
    runner = (f"from pathlib import Path\nfrom types import SimpleNamespace\nfrom toymodels.forkserver import hand_over\n"
              f"hand_over(SimpleNamespace(config={{'device': 'cpu'}}), {str(script)!r}, Path({str(server)!r}))\n")
    result = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "ValueError: bad cell" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_the_child_dies_with_its_job(tmp_path, server, signum):
    # SIGKILL: the watchdog sees the socket close; SIGTERM: the job's process kills the child's group, then itself
    job = run_job(tmp_path, server, sleep=120)
    pid_file = tmp_path / "work" / "child.pid"
    wait_for(pid_file.exists)
    child = int(pid_file.read_text())
    job.send_signal(signum)
    assert job.wait(timeout=10) == -signum
    wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE, 10)


def test_without_a_server_the_job_runs_in_its_own_interpreter_and_starts_one(tmp_path):
    path = tmp_path / "absent.sock"
    job = run_job(tmp_path, path)
    out, _ = job.communicate(timeout=60)
    assert job.returncode == 0
    assert out.split()[1] == runs_in(out)[2]  # same pid: ran here
    assert not (tmp_path / "work" / "job.log").exists()  # Snakemake's benchmark measures a cold job itself
    wait_for(path.exists)  # ... and the next job will find a warm server
    for process in psutil.process_iter(["cmdline"]):
        if str(path) in (process.info["cmdline"] or []):
            process.kill()


@pytest.mark.parametrize("variable, value, device", [("TOYMODELS_FORKSERVER", "0", "cpu"), ("SLURM_JOB_ID", "42", "cpu"),
                                                     ("TOYMODELS_FORKSERVER", "", "cuda")])
def test_switched_off_it_returns_without_connecting(tmp_path, monkeypatch, variable, value, device):
    monkeypatch.setenv(variable, value)
    path = tmp_path / "never.sock"
    hand_over(SimpleNamespace(config={"device": device}), "unused.py", path)
    assert not path.with_suffix(".log").exists()  # starting a server creates its log at once


def test_off_by_default_under_slurm_and_where_the_config_may_use_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "GPU_NODES", (str(tmp_path / "nvidiactl"),))
    assert enabled({"device": "cpu"}) and enabled({"device": "auto"}) and enabled(None)
    assert not enabled({"device": "cuda"})  # a child must not depend on how CUDA behaves after a fork
    (tmp_path / "nvidiactl").touch()  # a GPU machine: auto picks the GPU
    assert not enabled({"device": "auto"}) and not enabled(None) and enabled({"device": "cpu"})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # ... unless every GPU is hidden
    assert enabled({"device": "auto"})
    monkeypatch.setenv("SLURM_JOB_ID", "42")  # the server would be a process outside the job step
    assert not enabled({"device": "cpu"})
    monkeypatch.setenv("TOYMODELS_FORKSERVER", "1")  # asked for: on
    assert enabled({"device": "cpu"}) and enabled({"device": "cuda"})


def test_one_server_per_venv_hash_seed_and_installed_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    site = tmp_path / "site-packages"
    (site / "numpy-2.4.6.dist-info").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    path = socket_path()
    with monkeypatch.context() as venv_b:  # another venv of the same Python: the same sys.executable once resolved
        venv_b.setattr(sys, "prefix", str(tmp_path / "venv-b"))
        assert socket_path() != path
    with monkeypatch.context() as fixed:
        fixed.setenv("PYTHONHASHSEED", "0")
        assert socket_path() != path
        fixed.setenv("PYTHONHASHSEED", "random")
        assert socket_path() == path
    (site / "numpy-2.4.6.dist-info").rename(site / "numpy-2.4.7.dist-info")  # an upgrade during a run
    assert socket_path() != path


def test_the_socket_lives_in_a_private_directory_per_slurm_job(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = socket_path()
    assert path.parent == tmp_path / f"toymodels-{os.getuid()}" and path.parent.stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    job = socket_path()
    assert job not in (None, path)  # a job's children must stay in its own cgroup
    monkeypatch.setenv("SLURM_STEP_ID", "1")
    assert socket_path() not in (None, path, job)  # ... and in its own job step
    path.parent.chmod(0o755)  # opened up (or someone else's): never hand a job to a server found there
    assert socket_path() is None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("x" * 120)))
    (tmp_path / ("x" * 120)).mkdir()
    assert socket_path() is None  # too long for AF_UNIX: run cold rather than start a server that cannot bind


def test_the_server_imports_single_threaded(server_process):
    process, _ = server_process
    assert psutil.Process(process.pid).num_threads() == 1  # no BLAS, OpenMP or Arrow allocator threads to fork from


@pytest.mark.parametrize("setup, reason", [
    ("import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()", "2 threads run"),
    ("import torch\ntorch.cuda.is_initialized = lambda: True", "CUDA is initialised"),
])
def test_a_server_that_is_unsafe_to_fork_runs_the_job_in_its_own_process(tmp_path, setup, reason):
    path = tmp_path / "unsafe.sock"
    process = start_server(path, setup, **forkserver.SINGLE_THREADED)  # torch imported before serve() sets them
    try:
        job = run_job(tmp_path, path)
        out, err = job.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert job.returncode == 0
    assert out.split()[1] == runs_in(out)[2]  # same pid: ran here
    assert "did not take this job" in err
    assert f"not forking ({reason}" in path.with_suffix(".log").read_text()


FRESH_JOB = """
import atexit, os, sys, warnings
from pathlib import Path
from types import SimpleNamespace
from toymodels.forkserver import hand_over
print("job", os.getpid(), flush=True)
hand_over(SimpleNamespace(config={"device": "cpu"}), __file__, Path(sys.argv[1]) if len(sys.argv) > 1 else None)
warnings.warn("shown: the job's warning")
try:
    warnings.warn("an error by the job's PYTHONWARNINGS", FutureWarning)
except FutureWarning:
    print("the job's filters apply", flush=True)
atexit.register(print, "the job's exit handler", flush=True)
print("runs in", os.getpid(), "hash", hash("toymodels"), flush=True)
"""


def test_a_child_has_the_jobs_hash_seed_warnings_filters_and_exit_handlers(tmp_path):
    path = tmp_path / "seeded.sock"
    setup = ("import atexit, warnings\natexit.register(print, 'the server exit handler', flush=True)\n"
             "warnings.filterwarnings('ignore', message='shown')")
    process = start_server(path, setup, PYTHONHASHSEED="5")
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_JOB)

    def job(**env: str) -> tuple[str, str]:
        result = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONWARNINGS": "error::FutureWarning", **env})
        assert result.returncode == 0, result.stderr
        return result.stdout, result.stderr

    def fresh_hash(seed: str) -> int:
        command = [sys.executable, "-c", "print(hash('toymodels'))"]
        return int(subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout)

    try:
        out, err = job(PYTHONHASHSEED="5")
        other_out, other_err = job(PYTHONHASHSEED="6")
    finally:
        process.kill()
        process.wait()
    assert out.split()[1] != runs_in(out)[2]  # forked
    assert int(runs_in(out)[4]) == fresh_hash("5")
    assert "shown: the job's warning" in err  # the server's filters are not the job's
    assert "the job's filters apply" in out
    assert "the job's exit handler" in out and "the server exit handler" not in out
    # a fork cannot change its string-hash seed: a job that asks for another one runs in its own process
    assert other_out.split()[1] == runs_in(other_out)[2] and int(runs_in(other_out)[4]) == fresh_hash("6")
    assert "did not take this job" in other_err
    assert "not running a job with hash seed 6" in path.with_suffix(".log").read_text()
