"""End to end through the CLI with real Ray Train runs: GAN train (and resume), generate, train-scorer, score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from raydemand.runs import read_model

from raydemand.cli import main
from raydemand.design import load_run

TINY_GAN = ["--set", "model.width=4", "--set", "images.size=16", "--set", "batch_size=32", "--set", "sample_grid=2"]


@pytest.fixture(scope="module")
def gan_run(ray_session, visuelle2_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("design") / "dcgan"
    assert main(["design", "train", "--gan", "dcgan", "--images", str(visuelle2_dir), "--out", str(out),
                 "--epochs", "2", "--seed", "3", *TINY_GAN]) == 0
    return out


@pytest.fixture(scope="module")
def scorer_run(ray_session, visuelle2_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("design") / "scorer"
    assert main(["design", "train-scorer", "--images", str(visuelle2_dir), "--out", str(out), "--top", "90",
                 "--arch", "resnet18", "--epochs", "1", "--set", "images.size=32", "--set", "batch_size=32"]) == 0
    return out


@pytest.mark.slow
def test_gan_run_directory(gan_run):
    names = {p.name for p in gan_run.iterdir()}
    assert {"config.yaml", "model.pt", "metrics.json", "samples.png", "ray_train", "COMPLETE"} <= names
    record = json.loads((gan_run / "metrics.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [0, 1] and record["seed"] == 3 and record["lr"] == 2e-4
    assert record["select_metric"] == "val_fd_select"
    select = [h["val_fd_select"] for h in record["history"]]
    assert select[record["chosen_epoch"]] == min(select)  # the kept generator is the best validation epoch's
    assert record["train_images"] + record["val_images"] == 120
    for key in ("d_loss", "g_loss", "val_fd", "diversity_min", "d_separation"):
        assert np.isfinite(record["history"][-1][key])
    assert set(record) >= {"mode_collapse_epochs", "divergence_epochs"}
    model = read_model(gan_run)
    assert model.family == "gan" and model.state["args"]["name"] == "dcgan" and model.config["seed"] == 3
    run = load_run(gan_run)  # what Serve uses: no Ray
    images, labels = run.predict(3, "bag", seed=1)
    assert images.shape == (3, 16, 16, 3) and set(labels) == {run.categories.index("bag")}
    assert np.array_equal(run.predict(3, "bag", seed=1)[0], images)  # same seed, same images


@pytest.mark.slow
def test_existing_run_is_an_error_and_unfinished_run_resumes(gan_run, capsys):
    assert main(["design", "train", "--gan", "dcgan", "--images", "fashion-mnist", "--out", str(gan_run)]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    before = json.loads((gan_run / "metrics.json").read_text())["history"]
    (gan_run / "COMPLETE").unlink()  # an interrupted run: Ray's checkpoints, no completion marker
    cfg_args = ["--config", str(gan_run / "config.yaml"), "--epochs", "3"]
    assert main(["design", "train", "--out", str(gan_run), *cfg_args]) == 0
    after = json.loads((gan_run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in after] == [0, 1, 2]
    assert after[:2] == before  # the first two epochs came from the checkpoint, not a new run


@pytest.mark.slow
def test_generate_npz_contract(gan_run, tmp_path, capsys):
    out = tmp_path / "samples.npz"
    assert main(["design", "generate", "--checkpoint", str(gan_run), "--n", "25", "--out", str(out)]) == 0
    packed = np.load(out)
    assert packed["images"].dtype == np.uint8 and packed["images"].shape == (25, 16, 16, 3)
    assert packed["labels"].shape == (25,) and packed["labels"].max() < len(packed["categories"])
    one = tmp_path / "bags.npz"
    assert main(["design", "generate", "--checkpoint", str(gan_run), "--n", "4", "--category", "bag",
                 "--out", str(one)]) == 0
    packed = np.load(one)
    assert {str(packed["categories"][i]) for i in packed["labels"]} == {"bag"}
    capsys.readouterr()
    assert main(["design", "generate", "--checkpoint", str(gan_run), "--n", "4", "--category", "hat",
                 "--out", str(one)]) == 2
    assert "unknown category 'hat'" in capsys.readouterr().err


@pytest.mark.slow
def test_scorer_and_score(gan_run, scorer_run, tmp_path, capsys):
    record = json.loads((scorer_run / "metrics.json").read_text())
    assert record["split"] == {"train": record["split"]["train"], "val": record["split"]["val"],
                               "test": record["split"]["test"]}
    assert sum(record["split"].values()) == 90
    correct = record["test_accuracy"] * record["split"]["test"]  # a share of the held-out test images
    assert correct == pytest.approx(round(correct))
    assert "fd" in record["real_vs_real"] and (scorer_run / "reference.npz").is_file()
    scorer = load_run(scorer_run)
    probs, features = scorer.predict(np.zeros((2, 16, 16, 3), np.uint8))
    assert probs.shape == (2, len(scorer.categories)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert features.shape == (2, 512)
    samples = tmp_path / "samples.npz"
    assert main(["design", "generate", "--checkpoint", str(gan_run), "--n", "40", "--out", str(samples)]) == 0
    capsys.readouterr()
    report_dir = tmp_path / "report"
    assert main(["design", "score", "--scorer", str(scorer_run), "--images", str(samples),
                 "--out", str(report_dir)]) == 0
    printed = capsys.readouterr().out
    assert "Preference %" in printed and "dcgan" in printed
    assert "real test images" in printed and f"chance {100 / len(scorer.categories):.1f}%" in printed
    table = (report_dir / "preference.csv").read_text().splitlines()
    assert table[0] == "category,dcgan" and table[-1].startswith("all,")
    # 'all' is the mean over every image: the per-category values weighted by their image counts
    per = json.loads((report_dir / "score.json").read_text())["results"][0]["per_category"]
    parts = [v for c, v in per.items() if c != "all"]
    assert sum(v["n"] for v in parts) == 40
    assert per["all"]["preference"] == pytest.approx(sum(v["preference"] * v["n"] for v in parts) / 40)
    assert float(table[-1].split(",")[1]) == pytest.approx(per["all"]["preference"], abs=1e-4)
    features = (report_dir / "feature_space.csv").read_text()
    assert "real vs real" in features and "precision" in features

    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 16, 16), np.float32), labels=np.zeros(2, int), categories=np.array(["bag"]))
    assert main(["design", "score", "--scorer", str(scorer_run), "--images", str(bad)]) == 2
    assert "'images' must be uint8" in capsys.readouterr().err
    alien = tmp_path / "alien.npz"
    np.savez(alien, images=np.zeros((2, 16, 16), np.uint8), labels=np.zeros(2, int), categories=np.array(["hat"]))
    assert main(["design", "score", "--scorer", str(scorer_run), "--images", str(alien)]) == 2
    assert "unknown to this scorer" in capsys.readouterr().err

