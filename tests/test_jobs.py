"""Job entrypoints (raydemand/jobs.py, jobs/*.py): flag mapping, URI storage, and a real `ray job submit`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from raydemand import jobs
from raydemand.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_every_stage_has_an_entrypoint_and_a_config_for_its_command():
    from raydemand.cli import build_parser

    parser = build_parser()
    for stage, command in jobs.STAGES.items():
        assert (ROOT / "jobs" / f"{stage}.py").is_file(), stage
        spec = jobs.load_spec(ROOT / "jobs" / "configs" / f"{stage}.yaml", [])
        # The YAML's flags parse as the stage's command line: a renamed flag breaks this test.
        args = parser.parse_args(command + jobs.to_argv(spec))
        assert args.func is not None


def test_every_job_config_runs_as_shipped(tmp_path, monkeypatch, capsys, visuelle2_dir):
    """Each stage's entrypoint with its shipped YAML and `--check`: the config validates and the inputs
    resolve, from a working directory laid out as on the cluster (jobs/ of the repo; runs/prepare holding
    what the prepare stage writes, here the fixture's VISUELLE 2.0-layout set)."""
    (tmp_path / "jobs").symlink_to(ROOT / "jobs")
    (tmp_path / "runs" / "prepare" / "data").mkdir(parents=True)
    (tmp_path / "runs" / "prepare" / "data" / "visuelle2").symlink_to(visuelle2_dir)
    monkeypatch.chdir(tmp_path)
    # deploy runs `raydemand serve`, which has no --check yet; its flags are covered by the parse test above.
    for stage in sorted(set(jobs.STAGES) - {"deploy"}):
        code = subprocess.run([sys.executable, f"jobs/{stage}.py", "--config", f"jobs/configs/{stage}.yaml", "--check"],
                              capture_output=True, text=True, timeout=300)
        assert code.returncode == 0, f"{stage}: {code.stderr[-2000:]}"
        assert json.loads(code.stdout[code.stdout.index("{"):])["check"] == "ok", stage
    assert not (tmp_path / "runs" / "jobs").exists()  # nothing ran


def test_flags_overrides_and_bad_configs(tmp_path):
    cfg = tmp_path / "stage.yaml"
    cfg.write_text(yaml.safe_dump({"orders": "completejourney", "num_workers": 2, "gpu": True, "overwrite": False,
                                   "seed": None, "set": ["lr=0.1", "epochs=2"], "args": ["runs/a", "runs/b"]}, sort_keys=False))
    spec = jobs.load_spec(cfg, ["num_workers=4", "out=runs/x"])
    assert jobs.to_argv(spec) == ["--orders", "completejourney", "--num-workers", "4", "--gpu", "--set", "lr=0.1",
                                  "--set", "epochs=2", "--out", "runs/x", "runs/a", "runs/b"]
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        jobs.load_spec(cfg, ["num_workers"])
    cfg.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        jobs.load_spec(cfg, [])
    with pytest.raises(ConfigError, match="'data'"):
        jobs.to_argv({"data": {"top_products": 5}})
    with pytest.raises(FileNotFoundError, match="no such job config"):
        jobs.load_spec(tmp_path / "missing.yaml", [])


def test_uri_inputs_are_staged_and_out_is_resumed_and_uploaded(tmp_path):
    store = tmp_path / "store"
    (store / "table").mkdir(parents=True)
    (store / "table" / "orders.csv").write_text("user_id,order_id,order_number,product_id\n1,1,1,7\n")
    (store / "run" / "ray_train").mkdir(parents=True)
    (store / "run" / "ray_train" / "epoch_0000.txt").write_text("checkpoint")
    spec = {"orders": f"file://{store}/table", "out": f"file://{store}/run", "model": "topfreq"}

    local, uploads = jobs.stage_locally(spec, staging=tmp_path / "staging")
    assert local["model"] == "topfreq"
    assert Path(local["orders"], "orders.csv").read_text().startswith("user_id")
    # An out URI that already holds files comes down first: the stage resumes from its checkpoints.
    assert Path(local["out"], "ray_train", "epoch_0000.txt").read_text() == "checkpoint"
    Path(local["out"], "model.pt").write_bytes(b"weights")
    jobs.upload(uploads[spec["out"]], spec["out"])
    assert (store / "run" / "model.pt").read_bytes() == b"weights"

    with pytest.raises(FileNotFoundError, match="not found"):
        jobs.stage_locally({"orders": f"file://{store}/missing"}, staging=tmp_path / "staging")
    with pytest.raises(ConfigError, match="storage URI"):
        jobs.stage_locally({"orders": "nosuchscheme://bucket/x"}, staging=tmp_path / "staging")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _kill_cluster(temp_dir: str) -> None:
    """Stop only this cluster's processes (`ray stop` would stop every Ray on the machine)."""
    for _ in range(3):
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if temp_dir.encode() in cmdline.read_bytes():
                    pids.append(int(cmdline.parent.name))
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(1)


@pytest.fixture
def head_node():
    """A real cluster started with `ray start --head` in its own temp dir, on free ports."""
    temp_dir = tempfile.mkdtemp(prefix="rdjob", dir="/tmp")  # short: Ray's socket paths have a length limit
    gcs, dashboard, agent_http, agent_grpc, runtime_env, client, metrics, node_mgr, obj_mgr = _free_ports(9)
    # The job's `python` is the one the cluster's nodes have on PATH (this environment's, like a node
    # that installed the package); token auth as on a real cluster.
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0",
               PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    cmd = [str(BIN / "ray"), "start", "--head", f"--port={gcs}", f"--dashboard-port={dashboard}",
           "--dashboard-host=127.0.0.1", f"--dashboard-agent-listen-port={agent_http}",
           f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
           f"--ray-client-server-port={client}", f"--metrics-export-port={metrics}",
           f"--node-manager-port={node_mgr}", f"--object-manager-port={obj_mgr}", "--num-cpus=2",
           f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    try:
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=180)
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        _kill_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_ray_job_submit_runs_a_stage_and_uploads_its_run(head_node, instacart_dir, tmp_path):
    address, env = head_node
    store = tmp_path / "store"
    submit = [str(BIN / "ray"), "job", "submit", "--address", address, "--submission-id", "raydemand-test-job",
              "--working-dir", str(ROOT), "--runtime-env", str(ROOT / "jobs" / "runtime_env.yaml"), "--",
              "python", "jobs/train_basket.py", "--config", "jobs/configs/train_basket.yaml",
              "--set", f"orders={instacart_dir}", "--set", "model=topfreq", "--set", "config=null",
              "--set", f"out=file://{store}/basket"]
    # The dashboard agent takes a moment after `ray start` before it accepts jobs.
    for attempt in range(10):
        done = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=600)
        if "No available agent" not in done.stdout + done.stderr:
            break
        time.sleep(3)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    status = subprocess.run([str(BIN / "ray"), "job", "status", "--address", address, "raydemand-test-job"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert "succeeded" in (status.stdout + status.stderr).lower()
    # The run landed at its URI, complete: predict can load it from there.
    from raydemand.basket.base import load_run

    run = load_run(store / "basket")
    assert run.cfg.model == "topfreq"
    assert (store / "basket" / "metrics.json").is_file()
