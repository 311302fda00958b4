"""The command line: inputs checked before Ray, the shared flags mapped one way, names from the registries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raydemand.cli import build_parser, main
from raydemand.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def _checked(capsys, argv: list[str]) -> dict:
    """`raydemand ARGV --check`'s JSON (exit status 0)."""
    capsys.readouterr()
    assert main([*argv, "--check"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_missing_table_fails_fast_without_starting_ray(tmp_path):
    code = ("import sys; from raydemand.cli import main; rc = main(sys.argv[1:]); "
            "assert 'ray' not in sys.modules, 'ray was imported'; sys.exit(rc)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "forecast", "train", "--train", "missing.csv",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=120)
    seconds = time.perf_counter() - began
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raydemand: error: --train: missing.csv"), done.stderr
    assert seconds < 20  # an import of the package, not a Ray start (~10 s) plus the training's setup
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["basket", "predict", "--checkpoint", "{tmp}", "--orders", "completejourney", "--out", "{tmp}/p.csv"],
     "--checkpoint: {tmp}: not a finished run directory (no model.pt); pass a basket run directory"),
    (["design", "train-scorer", "--images", "fashion-mnist", "--top", "5", "--out", "{tmp}/s"],
     "--images: fashion-mnist has no sales"),
    (["tune", "design", "--images", "{tmp}/nothing", "--out", "{tmp}/t"], "--images: {tmp}/nothing: no such file"),
    (["data", "prepare", "windows", "--orders", "{tmp}/o.csv", "--out", "{tmp}/w"], "--orders: {tmp}/o.csv: no such"),
])
def test_every_family_checks_its_inputs_first(tmp_path, capsys, argv, message):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["forecast", "train", "--train", "{vis}", "--out", "{tmp}/f"],
    ["basket", "train", "--orders", "completejourney", "--out", "{tmp}/b"],
    ["design", "train", "--images", "fashion-mnist", "--out", "{tmp}/d"],
    ["design", "train-scorer", "--images", "fashion-mnist", "--out", "{tmp}/s"],
    ["tune", "forecast", "--train", "{vis}", "--out", "{tmp}/tf"],
])
def test_shared_flags_reach_the_config_one_way(tmp_path, capsys, visuelle2_dir, argv):
    argv = [a.format(tmp=tmp_path, vis=visuelle2_dir) for a in argv]
    config = tmp_path / "c.yaml"
    config.write_text("train: {num_workers: 3, cpus_per_worker: 2}\n")
    report = _checked(capsys, [*argv, "--num-workers", "2", "--gpu", "--set", "seed=7"])
    cfg = report["config"].get("base", report["config"])  # tune: the sweep and its trials' base config
    assert cfg["train"]["num_workers"] == 2 and cfg["train"]["use_gpu"] is True
    if argv[0] != "tune":  # tune's --config/--set are the sweep's; its family config comes from the sweep's base
        assert cfg["seed"] == 7
        cfg = _checked(capsys, [*argv, "--config", str(config)])["config"]
        assert cfg["train"]["num_workers"] == 3 and cfg["train"]["cpus_per_worker"] == 2


@pytest.fixture
def toy_forecaster():
    """tests/toy_forecaster.py registered for the test, unregistered after it."""
    from raydemand.forecast.base import FORECASTERS

    import toy_forecaster

    FORECASTERS[toy_forecaster.NAME] = toy_forecaster.ToyMean
    yield toy_forecaster.NAME
    FORECASTERS.pop(toy_forecaster.NAME)


@pytest.mark.slow
def test_a_forecaster_added_in_one_file_is_in_the_cli_config_tune_and_serve(toy_forecaster, ray_session,
                                                                             visuelle2_dir, tmp_path, capsys):
    from raydemand.forecast.config import ForecastConfig
    from raydemand.forecast.run import load_run

    with pytest.raises(SystemExit):
        build_parser().parse_args(["forecast", "train", "--help"])
    assert toy_forecaster in capsys.readouterr().out.replace("\n", " ")
    assert load_config(ForecastConfig, forecaster=toy_forecaster).forecaster == toy_forecaster
    with pytest.raises(ConfigError, match=f"unknown forecaster 'toy'; registered: .*{toy_forecaster}"):
        load_config(ForecastConfig, forecaster="toy")
    report = _checked(capsys, ["forecast", "train", "--train", str(visuelle2_dir), "--out", str(tmp_path / "f"),
                               "--forecaster", toy_forecaster])
    assert report["config"]["forecaster"] == toy_forecaster

    # Tune: a one-trial sweep of the default space on the toy model, trained in a Tune trial (a Ray worker).
    # The table has no images and no captions: the toy reads neither, so no encoder runs.
    from raydemand.data.sources import load_products

    table = tmp_path / "products.csv"
    products = load_products(visuelle2_dir, split="train", check_images=False)
    products.drop(columns=[c for c in ("image_path", "caption", "text") if c in products]).to_csv(table, index=False)
    out = tmp_path / "sweep"
    assert main(["tune", "forecast", "--train", str(table), "--out", str(out), "--num-samples", "1",
                 "--set", f"space.forecaster={toy_forecaster}",
                 # the toy served as trained (no blend with a baseline): its curve is what Serve must answer
                 "--set", "set=[captions.captioner=column, baselines.guard=false]"]) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["finished"] == 1 and best["params"]["forecaster"] == toy_forecaster
    assert json.loads((out / "settings.json").read_text())["plugins"] == ["toy_forecaster"]
    run = load_run(best["run_dir"])
    assert run.forecaster.name == toy_forecaster

    # Serve: the trial's run served over HTTP; the replica (a fresh process) imports the module the
    # run's model.pt records, and answers what the CLI's predict answers.
    import requests
    from ray import serve

    from raydemand.serve.app import build_app

    row = products.iloc[0]
    serve.start(http_options={"host": "127.0.0.1", "port": 8124})
    try:
        serve.run(build_app({"run_dirs": [best["run_dir"]]}), name="toy", route_prefix="/toy")
        body = {"products": [{"external_code": "n1", "release_date": str(row["release_date"])[:10],
                              "attributes": {a: str(row[a]) for a in run.attributes}, "caption": "a coat"}]}
        r = requests.post("http://127.0.0.1:8124/toy/v1/forecast", json=body, timeout=120)
        assert r.status_code == 200, r.text
        served = r.json()["forecasts"][0]["weeks"]
    finally:
        serve.shutdown()
    assert served == pytest.approx(list(run.forecaster.curve * run.scale / run.units_per_value), rel=1e-5)


def test_tune_reads_the_family_config_from_the_sweep_not_from_its_flags(tmp_path, capsys, visuelle2_dir):
    """`--config`/`--set` of a tune command are the sweep's; the trials' base config is the sweep's `base`
    YAML and `set` list (a sweep without `base` starts from the code defaults)."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("set: [epochs=3]\nspace: {lr: {choice: [0.001, 0.002]}}\n")
    report = _checked(capsys, ["tune", "forecast", "--train", str(visuelle2_dir), "--out", str(tmp_path / "sw"),
                               "--config", str(sweep), "--set", "num_samples=2"])
    assert report["config"]["base"]["epochs"] == 3 and report["config"]["sweep"]["num_samples"] == 2
    assert report["config"]["sweep"]["scheduler"] == "fifo"  # a sweep YAML is taken as written
