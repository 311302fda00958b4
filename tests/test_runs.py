"""The run folder contract (`raydemand.runs`): one model.pt layout, the completion marker, the resume
guard, a safe --overwrite, and run folders written before this layout."""

from __future__ import annotations

import pytest
import torch

from raydemand import runs
from raydemand.errors import InputError


def _config():
    from raydemand.design.config import GANTrainConfig

    return GANTrainConfig()


def test_model_file_round_trip_and_the_marker_written_last(tmp_path):
    cfg = _config()
    out = runs.start_run(tmp_path / "run", cfg)
    assert (out / runs.CONFIG_FILE).is_file()  # before any training: the resume guard reads it
    runs.write_model(out, "gan", cfg, {"G": {"w": torch.ones(2)}, "epoch": 3})
    assert not runs.is_complete(out)
    with pytest.raises(InputError, match="unfinished run .*--out"):
        runs.read_model(out)
    assert runs.read_model(out, "gan", finished=False).state["epoch"] == 3
    runs.finish_run(out, {"chosen_epoch": 3})
    model = runs.read_model(out, "gan")
    assert (model.family, model.format, model.config) == ("gan", runs.FORMAT, cfg.model_dump(mode="json"))
    assert torch.equal(model.state["G"]["w"], torch.ones(2))
    assert runs.read_metrics(out) == {"chosen_epoch": 3}
    assert runs.is_complete(out) and runs.run_family(out) == "gan"
    with pytest.raises(InputError, match="holds a GAN run, not a basket run directory"):
        runs.read_model(out, "basket")
    assert runs.model_version(out) == f"run@{runs.model_digest(out)[:12]}"


def test_missing_model_names_the_command(tmp_path):
    with pytest.raises(InputError, match=r"no model.pt.*raydemand design train-scorer --out RUN_DIR"):
        runs.read_model(tmp_path, "scorer")


def test_start_run_refuses_finished_runs_and_resumes_only_the_same_settings(tmp_path):
    from raydemand.design.config import GANTrainConfig

    out = runs.start_run(tmp_path / "run", GANTrainConfig())
    runs.storage_dir(out).mkdir()  # a checkpoint folder: the run can resume
    runs.start_run(out, GANTrainConfig(epochs=20))  # more epochs: resumable
    wider = GANTrainConfig.model_validate({"model": {"width": 8}})
    with pytest.raises(InputError, match=r"other settings \(model differ"):
        runs.start_run(out, wider)
    runs.start_run(out, wider, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [runs.CONFIG_FILE]  # started over, config first
    runs.write_model(out, "gan", wider, {})
    runs.finish_run(out, {})
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        runs.start_run(out, wider)


def test_overwrite_deletes_only_a_run_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="folder of other files, not a run directory"):
            runs.start_run(home, _config(), overwrite=overwrite)
    assert (home / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        runs.start_run(tmp_path / "file", _config(), overwrite=True)


# ---- run folders written before this layout (tests/fixtures/old_runs, made by commit dd00044) ----

OLD = __import__("pathlib").Path(__file__).parent / "fixtures" / "old_runs"


@pytest.mark.parametrize("family", ["forecast", "basket", "gan"])
def test_old_layouts_are_recognised_and_finished(family):
    model = runs.read_model(OLD / family)
    assert (model.family, model.format) == (family, 0) and model.config["seed"] == runs.read_metrics(OLD / family)["seed"]
    assert runs.is_complete(OLD / family)
    with pytest.raises(FileExistsError, match="finished run"):
        runs.start_run(OLD / family, _config())


def test_old_basket_run_predicts_as_before():
    import pandas as pd

    from raydemand.basket.base import load_run

    pred = load_run(OLD / "basket").predict(pd.read_csv(OLD / "basket_orders.csv"), k=5)
    pd.testing.assert_frame_equal(pred.reset_index(drop=True), pd.read_csv(OLD / "basket_expected.csv"),
                                  check_dtype=False)


def test_old_gan_run_generates_as_before():
    import numpy as np

    from raydemand.design import load_run

    expected = np.load(OLD / "gan_expected.npz")
    images, labels = load_run(OLD / "gan").generate(8, seed=0)
    assert np.array_equal(images, expected["images"]) and np.array_equal(labels, expected["labels"])


def test_old_scorer_layout_loads(tmp_path):
    """The scorer's old model.pt (a `kind` key) is a whole ResNet-18, too big to ship: written here
    with the keys dd00044's `train_scorer` wrote, beside the fixture's real config and reference."""
    import shutil

    import numpy as np

    from raydemand.design import load_run
    from raydemand.design.scorer import build_model, features, to_input

    run = shutil.copytree(OLD / "scorer", tmp_path / "scorer")
    categories = runs.read_metrics(run)["categories"]
    model = build_model("resnet18", len(categories), seed=0).eval()
    torch.save({"kind": "scorer", "arch": "resnet18", "size": 32, "categories": categories,
                "state_dict": model.state_dict(), "epoch": 0}, run / runs.MODEL_FILE)
    images = np.load(OLD / "gan_expected.npz")["images"]
    scorer = load_run(run)
    probs, feats = scorer.predict(images)
    with torch.no_grad():
        expected = features(model, to_input(images, 32))
    assert scorer.categories == categories and scorer.reference is not None
    assert np.allclose(feats, expected.numpy(), atol=1e-5) and np.allclose(probs.sum(1), 1)


def test_old_forecast_run_predicts_as_before(ray_session):
    import pandas as pd

    from raydemand.forecast.data import load_table
    from raydemand.forecast.run import load_run

    df = load_table(OLD / "forecast_products.csv", require_targets=False)
    pred = load_run(OLD / "forecast").predict(df)
    expected = pd.read_csv(OLD / "forecast_expected.csv", dtype={"external_code": str})
    pd.testing.assert_frame_equal(pred.reset_index(drop=True), expected, check_dtype=False)
