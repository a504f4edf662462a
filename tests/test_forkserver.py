"""The warm job server: a handed-over script runs as the job would (cwd, environment, streams, exit status), dies
with its job, and a job runs in its own interpreter when the server is off or absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from toymodels.forkserver import hand_over, read_usage, socket_path

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


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server on a private socket for this module's tests (it would idle out after 60 s); stopped after them."""
    path = tmp_path_factory.mktemp("server") / "s.sock"
    process = subprocess.Popen([sys.executable, "-m", "toymodels.forkserver", str(path), "60"])
    wait_for(path.exists)
    yield path
    process.kill()
    process.wait()


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
              f"snakemake = SimpleNamespace(arg='value', status={status}, sleep={sleep}, log=['job.log'])\n"
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
    runner = (f"from pathlib import Path\nfrom toymodels.forkserver import hand_over\n"
              f"hand_over({{}}, {str(script)!r}, Path({str(server)!r}))\n")
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


def test_switched_off_it_returns_without_connecting(tmp_path, monkeypatch):
    monkeypatch.setenv("TOYMODELS_FORKSERVER", "0")
    path = tmp_path / "never.sock"
    hand_over({}, "unused.py", path)
    assert not path.with_suffix(".log").exists()  # starting a server creates its log at once


def test_the_socket_lives_in_a_private_directory_per_slurm_job(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = socket_path()
    assert path.parent == tmp_path / f"toymodels-{os.getuid()}" and path.parent.stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert socket_path() not in (None, path)  # a job's children must stay in its own cgroup
    path.parent.chmod(0o755)  # opened up (or someone else's): never hand a job to a server found there
    assert socket_path() is None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("x" * 120)))
    (tmp_path / ("x" * 120)).mkdir()
    assert socket_path() is None  # too long for AF_UNIX: run cold rather than start a server that cannot bind
