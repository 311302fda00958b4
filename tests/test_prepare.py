"""The prepare stage and `raydemand demo`: every step on the local Ray cluster, resume, report."""

import json

import pandas as pd
import pytest
import yaml

from raydemand.cli import main
from raydemand.config import load_config
from raydemand.data.prepare import run_prepare
from raydemand.runs import is_complete

SMALL = ["synth_products.scale=40", "synth_orders.scale=60", "images.size=16",
         "embeddings=[{encoder: resnet18, field: image, images: {size: 32}}]", "windows={n_orders: 3}"]


# The trainings in seconds: one forecast epoch, one autoencoder report, one GAN update and one scorer
# epoch on 200 real Fashion-MNIST images.
SMALL_TRAINING = ["forecast.epochs=1", "basket.autoencoder.epochs=10", "gan.epochs=1", "gan.images.limit=200",
                "scorer.epochs=1", "scorer.images.limit=200"]


@pytest.mark.slow
def test_demo_runs_every_step_and_resumes(ray_session, tmp_path, capfd):
    out = tmp_path / "demo"
    # One sweep trial (one pos_weight, three thresholds) keeps the suite short; the demo's default has two.
    assert main(["demo", "--out", str(out), "--set", "tune_pos_weights=[20]",
                 *sum((["--set", s] for s in SMALL + SMALL_TRAINING), [])]) == 0
    # The terminal: one line per stage and a short summary; Ray's own output went to RUN/ray.log.
    terminal = capfd.readouterr()
    # Lines of other tests' Ray workers that the session's driver forwards late are not the demo's.
    lines = [line for line in (terminal.out + terminal.err).splitlines() if "pid=" not in line]
    assert len(lines) <= 15, "\n".join(lines)
    assert [line.split()[0] for line in lines if line.startswith("[")] == [f"[{i}/6]" for i in range(1, 7)]
    assert f"report: {out.resolve() / 'report.md'}" in terminal.out
    assert "test WAPE" in terminal.out and "Trial" not in terminal.out + terminal.err
    assert (out / "ray.log").stat().st_size > 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["synth_visuelle2"]["products"] == 40 and summary["synth_instacart"]["users"] == 60
    assert summary["images"]["images"] == 40 and summary["images"]["shape"] == [3, 16, 16]
    assert summary["embeddings/resnet18-image"]["rows"] == 40
    assert summary["windows"]["users"] == 60
    images = pd.read_parquet(out / "images")
    assert len(images) == 40 and images["external_code"].is_unique
    windows = pd.read_parquet(out / "windows")
    assert (windows["n_history"] >= 1).all() and len(windows) == summary["windows"]["windows"]
    for png in ("product_images.png", "sales_by_category.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![product images](product_images.png)" in (out / "report.md").read_text()
    # The stages after prepare: three trained families, a sweep, the Serve app called over HTTP.
    for run in ("forecast", "basket", "gan", "scorer"):
        assert is_complete(out / run), run
    assert all(summary["serve"][call]["status"] == 200 for call in
               ("GET /healthz", "POST /v1/forecast", "POST /v1/design/score", "POST /v1/basket/predict"))
    assert set(summary["seconds"]) == {"prepare", "forecast", "basket", "design", "tune", "serve"}
    # The sweep ran as a Tune trial (a Ray Train run inside it) and scored every threshold after training.
    assert summary["tune"]["finished"] == 1 and summary["tune"]["errors"] == 0
    sweep = pd.read_csv(out / "tune_basket" / "results.csv")
    assert list(sweep["threshold"]) == [0.3, 0.4, 0.5] and set(sweep["pos_weight"]) == {20.0}
    # The report tours every family, each result next to its baseline or reference.
    report = (out / "report.md").read_text()
    for section in ("## 1. Data", "## 2. New-product forecast", "## 3. Next basket", "## 4. Design",
                    "## 5. Sweep", "## 6. Serving"):
        assert section in report, section
    assert "**This is a smoke run.**" in report and "GP-TopFreq (baseline)" in report
    assert {"crossattnrnn", "median"} <= set(summary["forecast"]) and "gptopfreq" in summary["basket"]
    assert 0 <= summary["design"]["recognised_all"] <= 100 and summary["design"]["updates"] == 1
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["images"]["size"] == 16 and saved["synth_orders"]["scale"] == 60

    # Run again with one step changed: only that step runs; the others are reused as they were.
    from raydemand.demo import DemoConfig

    cfg = load_config(DemoConfig, out / "config.yaml", ["windows.n_orders=2"])
    steps = run_prepare(cfg, log=lambda _: None)
    assert steps["images"].get("reused") and steps["embeddings/resnet18-image"].get("reused")
    assert steps["synth_instacart"].get("reused") and not steps["windows"].get("reused")
    assert steps["windows"]["n_orders"] == 2


def test_prepare_job_rejects_bad_config(tmp_path, capsys):
    def job_main(argv):
        return main(["data", "prepare", "all", *argv])

    assert job_main(["--set", "windows.n_order=3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown key 'windows.n_order'" in capsys.readouterr().err
    assert job_main(["--out", str(tmp_path / "y")]) == 2
    assert "nothing to prepare" in capsys.readouterr().err
    config = tmp_path / "both.yaml"
    config.write_text("products: somewhere\nsynth_products: {scale: 5}\n")
    assert job_main(["--config", str(config), "--out", str(tmp_path / "z")]) == 2
    assert "either `products` or `synth_products`" in capsys.readouterr().err
