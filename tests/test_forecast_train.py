"""End to end with Ray: train (TorchTrainer), resume, predict, evaluate, CLI errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import ray.train
from raydemand.runs import read_model

from raydemand.cli import main
from raydemand.forecast.config import ForecastConfig
from raydemand.forecast.train import train

TINY = ["epochs=2", "batch_size=64", "patience=null", "model.embed_dim=16", "model.heads=2",
        "model.decoder_hidden=16", "data.image_size=32", "data.embed_batch_size=128", "retrieval.k=4"]


def tiny(*extra: str) -> ForecastConfig:
    from raydemand.config import load_config

    return load_config(ForecastConfig, None, [*TINY, *extra])


@pytest.fixture(scope="module")
def cache(tmp_path_factory, ray_session, visuelle2_dir):
    """Captions + frozen embeddings of the fixture's training products, computed once for the module."""
    from raydemand.forecast.data import embed_products, load_table

    folder = tmp_path_factory.mktemp("fc_cache")
    embed_products(load_table(visuelle2_dir, split="train"), tiny(), folder)
    return folder


class ReportedMetrics(ray.train.UserCallback):
    """Writes the metric names each report carries to a file (callbacks run in Ray Train's controller)."""

    def __init__(self, path):
        self.path = str(path)

    def after_report(self, run_context, metrics, checkpoint):
        with open(self.path, "a") as f:
            f.write(json.dumps(sorted(metrics[0])) + "\n")


@pytest.mark.slow
def test_train_resume_predict_evaluate(ray_session, visuelle2_dir, cache, tmp_path, capsys, caplog):
    from raydemand.forecast.guard import alone
    from raydemand.forecast.run import load_run

    run_dir = tmp_path / "run"
    reports = tmp_path / "reports.jsonl"
    first = train(tiny("epochs=1"), visuelle2_dir, run_dir, cache_dir=cache, callbacks=[ReportedMetrics(reports)])
    assert [h["epoch"] for h in first["history"]] == [0]
    # the callbacks reach Ray Train: one report per epoch, with the metric names docs/forecast.md promises
    names = [json.loads(line) for line in reports.read_text().splitlines()]
    assert len(names) == 1 and {"val_loss", "val_wape", "val_mae", "val_mse", "train_loss", "epoch"} <= set(names[0])
    # An interrupted run: the checkpoints are there, the final files are not. Training again resumes.
    (run_dir / "COMPLETE").unlink()
    (run_dir / "metrics.json").unlink()
    caplog.clear()
    second = train(tiny(), visuelle2_dir, run_dir, cache_dir=cache)
    assert [h["epoch"] for h in second["history"]] == [0, 1]
    assert second["history"][0]["val_loss"] == first["history"][0]["val_loss"]
    assert second["chosen_epoch"] == int(np.argmin([h["val_loss"] for h in second["history"]]))
    model = read_model(run_dir, "forecast")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["seed"] == 0 and metrics["rows"]["val"] > 0
    # the guard: the baselines compared on the same validation rows, and what model.pt serves is never
    # worse there than the model or the best of them
    served = metrics["served"]
    assert set(metrics["baselines"]) == {"median", "attribute_median"} and served["model"] == "crossattnrnn"
    assert served["val"]["wape"] <= min(metrics["val"]["wape"], *(m["wape"] for m in metrics["baselines"].values())) + 1e-6
    assert model.state["forecaster"] == served["forecaster"] and "pool" in model.state and model.config["epochs"] == 2
    if served["forecaster"] == "blend":
        inner = model.state["state"]["inner"]
        assert inner["name"] == "crossattnrnn" and model.state["state"]["weight"] == served["weight"] < 1
        assert model.state["state"]["baseline"]["name"] == served["baseline"]
    else:
        assert served["forecaster"] == "crossattnrnn" and served["weight"] == 1.0
    assert set(model.state["baselines"]) == {"median", "attribute_median"}
    loses = metrics["val"]["wape"] >= min(m["wape"] for m in metrics["baselines"].values())
    assert ("crossattnrnn does not beat the" in caplog.text) == loses  # the one line the stage writes
    assert (run_dir / "config.yaml").is_file()
    with pytest.raises(FileExistsError):
        train(tiny(), visuelle2_dir, run_dir, cache_dir=cache)

    # predict on the test products, without their sales, and with a product that has no image
    test = pd.read_csv(visuelle2_dir / "stfore_test.csv")
    products = test.drop(columns=[str(i) for i in range(12)])
    no_image = products["external_code"] == products.loc[0, "external_code"]
    products["image_path"] = np.where(no_image, "", "images/" + products["image_path"])
    shutil.copytree(visuelle2_dir / "images", tmp_path / "images")
    products.to_csv(tmp_path / "new.csv", index=False)
    pred_path = tmp_path / "pred.csv"
    assert main(["forecast", "predict", "--checkpoint", str(run_dir), "--products", str(tmp_path / "new.csv"),
                 "--out", str(pred_path)]) == 0
    pred = pd.read_csv(pred_path)
    assert list(pred.columns) == ["external_code", "retail", *[str(i) for i in range(12)]]
    assert len(pred) == len(test) and np.isfinite(pred.iloc[:, 2:].to_numpy()).all()
    assert (pred.iloc[:, 2:].to_numpy() >= 0).all()

    out = tmp_path / "eval"
    assert main(["forecast", "evaluate", "--checkpoint", str(run_dir), "--test", str(visuelle2_dir),
                 "--out", str(out)]) == 0
    result = json.loads((out / "test_metrics.json").read_text())
    assert result["rows"] == len(test)
    for scale in ("normalised", "units"):
        assert {"mae", "mse", "wape", "wape_w0", "mae_w11"} <= set(result[scale])
    assert result["units"]["wape"] == pytest.approx(result["normalised"]["wape"])
    # the same comparison on the test rows: served, the model alone, both baselines (unit scale)
    compared = result["comparison"]
    assert set(compared) == {"served", "model", "median", "attribute_median"}
    assert compared["served"]["forecaster"] == served["forecaster"] and compared["model"]["forecaster"] == "crossattnrnn"
    assert compared["served"]["wape"] == pytest.approx(result["units"]["wape"])
    assert compared["served"]["mae"] == pytest.approx(result["units"]["mae"])
    assert compared["attribute_median"]["wape"] != compared["median"]["wape"]
    assert '"comparison"' in capsys.readouterr().out
    assert (out / "forecast_vs_actual.png").stat().st_size > 1000
    # evaluate's predictions match predict's, except for the product predict saw without its image
    ev = pd.read_csv(out / "predictions.csv")
    same = ~no_image.to_numpy()
    np.testing.assert_allclose(ev.iloc[:, 2:].to_numpy()[same], pred.iloc[:, 2:].to_numpy()[same], rtol=1e-4,
                               atol=1e-6)

    # attention for Serve: plain values, one dict per row, the same forecasts as without it
    run = load_run(run_dir)
    table = products.assign(release_date=pd.to_datetime(products["release_date"]), image_path="").head(5)
    plain = run.predict(table)
    explained, attention = run.predict(table, return_attention=True)
    pd.testing.assert_frame_equal(plain, explained)
    if served["weight"] == 0:  # the baseline's forecast is served, without attention; the model's is checked
        assert attention == [{}] * len(table)
        _, attention = alone(run.forecaster).explain(run.rows(table), run.pool)
    assert len(attention) == len(table)
    pool_codes = set(run.pool.side.codes)
    for row, a in zip(table.itertuples(), attention):
        assert set(a) == {"image_text", "neighbours"}
        assert all(type(w) is float for w in a["image_text"]) and sum(a["image_text"]) == pytest.approx(1.0, abs=1e-5)
        weights = [n["weight"] for n in a["neighbours"]]
        assert all(type(w) is float for w in weights) and weights == sorted(weights, reverse=True)
        assert 0 < len(weights) <= 4 and sum(weights) == pytest.approx(1.0, abs=1e-5)
        codes = [n["external_code"] for n in a["neighbours"]]
        assert all(type(c) is str for c in codes) and set(codes) <= pool_codes and row.external_code not in codes
    json.dumps(attention)

    # the series of vis2_gtrends_data.csv travel in model.pt: a product released after they end is
    # forecast with its weeks masked, and the other rows' forecasts do not change beside it
    trend_names = list(pd.read_csv(visuelle2_dir / "vis2_gtrends_data.csv", nrows=0).columns[1:])
    assert model.state["trends"]["names"] == trend_names and alone(run.forecaster).dims["trend_series"] == 3
    late = table.head(1).assign(external_code="late", release_date=pd.Timestamp("2022-06-01"))
    both = run.predict(pd.concat([table, late], ignore_index=True))
    assert both["external_code"].astype(str).tolist() == [*plain["external_code"].astype(str), "late"]
    weeks = both.iloc[:, 2:].to_numpy(float)
    np.testing.assert_allclose(weeks[:len(table)], plain.iloc[:, 2:].to_numpy(float), rtol=1e-5, atol=1e-7)
    assert np.isfinite(weeks[-1]).all() and (weeks[-1] >= 0).all()


@pytest.mark.slow
def test_baseline_runs_share_the_interface(ray_session, visuelle2_dir, cache, tmp_path):
    from raydemand.forecast.run import load_run

    metrics = train(tiny("forecaster=median"), visuelle2_dir, tmp_path / "median", cache_dir=cache)
    assert metrics["forecaster"] == "median" and "history" not in metrics
    # a baseline asked for by name is served as asked, beside the comparison
    assert metrics["served"]["forecaster"] == "median" and set(metrics["baselines"]) == {"median", "attribute_median"}
    run = load_run(tmp_path / "median")
    test = pd.read_csv(visuelle2_dir / "stfore_test.csv")
    test["image_path"] = ""
    pred = run.predict(test.assign(release_date=pd.to_datetime(test["release_date"])))
    assert np.allclose(pred.iloc[:, 2:].to_numpy(), pred.iloc[0, 2:].to_numpy())  # one median curve
    same, attention = run.predict(test.assign(release_date=pd.to_datetime(test["release_date"])),
                                  return_attention=True)
    pd.testing.assert_frame_equal(same, pred)
    assert attention == [{}] * len(test)  # no attention in a baseline


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["forecast", "predict", "--checkpoint", str(tmp_path), "--products", "x.csv",
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "pass a forecast run directory" in capsys.readouterr().err
    assert main(["forecast", "train", "--train", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r"),
                 "--set", "loss.mea=1"]) == 2
    assert "loss.mea" in capsys.readouterr().err
