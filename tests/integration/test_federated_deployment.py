"""A real Flower deployment on localhost: a SuperLink and SuperNodes as separate processes over TLS with SuperNode
authentication, the app submitted with `flwr run apps/federated`; a SuperNode whose key was never registered is
refused, and a SuperNode killed during a round does not stop the run."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learntolearn.federated.certificates import make_certificates
from learntolearn.files import load_tensors

# processes of their own: run one after another on one worker when the tests run in parallel (pytest -n)
pytestmark = pytest.mark.xdist_group("processes")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def checkpoint_round(run: Path) -> int:
    try:
        return load_tensors(run / "checkpoint.pt", "test")["round"]
    except Exception:
        return 0


@pytest.mark.slow  # a SuperLink, three SuperNodes and a ClientApp process per message
def test_tls_authenticated_deployment_refuses_strangers_and_survives_a_killed_node(data_root, tmp_path):
    certs = tmp_path / "certs"
    make_certificates(certs, nodes=3, hosts=["localhost", "127.0.0.1"])
    port = free_port()
    home = tmp_path / "flwr-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{certs / "ca.crt"}"\n'
    )
    env = {**os.environ, "FLWR_HOME": str(home), "OMP_NUM_THREADS": "1"}
    processes: dict[str, subprocess.Popen] = {}
    logs = []

    def start(name: str, *command: str) -> subprocess.Popen:
        logs.append(open(tmp_path / f"{name}.log", "w"))
        processes[name] = subprocess.Popen(
            command, stdout=logs[-1], stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        return processes[name]

    def log_of(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text()

    def supernode(index: int) -> subprocess.Popen:
        return start(
            f"supernode-{index}",
            str(BIN / "flower-supernode"),
            "--root-certificates", str(certs / "ca.crt"),
            "--superlink", f"127.0.0.1:{port}",
            "--auth-supernode-private-key", str(certs / f"supernode-{index}.key"),
            "--node-config", f"partition-id={index} data-root='{data_root}'",
            "--port", str(free_port()),
            "--max-retries", "1",
            "--max-wait-time", "30",
        )  # fmt: skip

    def flwr(*args: str) -> str:
        done = subprocess.run([str(BIN / "flwr"), *args], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        start(
            "superlink",
            str(BIN / "flower-superlink"),
            "--ssl-ca-certfile", str(certs / "ca.crt"),
            "--ssl-certfile", str(certs / "superlink.crt"),
            "--ssl-keyfile", str(certs / "superlink.key"),
            "--enable-supernode-auth",
            "--disable-runtime-dependency-installation",
            "--host", "127.0.0.1",
            "--port", str(port),
        )  # fmt: skip
        wait_for(lambda: "Uvicorn running on https://127.0.0.1" in log_of("superlink"), 120, "the SuperLink (TLS)")
        for index in (0, 1):
            assert "registered successfully" in flwr("supernode", "register", str(certs / f"supernode-{index}.pub"))
        for index in (0, 1, 2):
            supernode(index)
        stranger = processes["supernode-2"]
        wait_for(lambda: stranger.poll() is not None, 180, "the unregistered SuperNode to be refused")
        assert stranger.returncode != 0 and "Failed to activate SuperNode" in log_of("supernode-2")
        wait_for(lambda: flwr("supernode", "ls").count("online") == 2, 120, "both registered SuperNodes online")

        run = tmp_path / "run"
        settings = f"run-dir='{run}' rounds=3 supernodes=2 clients-per-round=2 round-timeout=240.0"
        assert "Successfully started run" in flwr(
            "run", str(ROOT / "apps" / "federated"), "test", "--run-config", settings
        )
        wait_for(lambda: checkpoint_round(run) >= 1, 600, "round 1")
        os.killpg(processes["supernode-1"].pid, signal.SIGKILL)  # round 2's messages are already on their way
        wait_for(lambda: checkpoint_round(run) >= 3, 900, "rounds 2 and 3 without the killed SuperNode")
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for log in logs:
            log.close()
    history = load_tensors(run / "checkpoint.pt", "test")["history"]
    assert [h["round"] for h in history] == [1, 2, 3]
    assert history[0]["failures"] == 0 and history[0]["bytes_up"] == history[0]["bytes_down"]
    assert history[-1]["failures"] == 1  # the killed node left out; the survivor's model was averaged
    assert history[-1]["bytes_up"] == history[-1]["bytes_down"] // 2
