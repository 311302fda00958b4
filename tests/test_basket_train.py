"""End to end through the CLI with a real local Ray: Ray Data windows, Ray Train (TorchTrainer and
XGBoostTrainer), run directories, predict, evaluate, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from raydemand.cli import main
from raydemand.runs import read_model

FAST = ["--set", "batch_size=128", "--set", "net.embeddings=random", "--set", "net.order_hidden=32",
        "--set", "net.embed_dim=16"]


@pytest.fixture(scope="module")
def cnngru_run(ray_session, instacart_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("basket") / "cnngru"
    assert main(["basket", "train", "--orders", str(instacart_dir), "--out", str(run), "--model", "cnngru",
                 "--seed", "3", "--set", "epochs=2", *FAST]) == 0
    return run


@pytest.mark.slow
def test_train_writes_a_self_contained_run(cnngru_run):
    model = read_model(cnngru_run, "basket")
    assert model.state["model"] == "cnngru" and 0 < model.state["threshold"] < 1 and model.config["seed"] == 3
    metrics = json.loads((cnngru_run / "metrics.json").read_text())
    assert metrics["seed"] == 3 and len(metrics["history"]) == 2
    ndcg = [h["val_ndcg"] for h in metrics["history"]]
    assert ndcg[metrics["chosen_epoch"]] == max(ndcg)  # the kept weights are the best validation epoch's
    assert metrics["data"]["test_users_held_out"] > 0
    assert "seed: 3" in (cnngru_run / "config.yaml").read_text()
    assert (cnngru_run / "val_threshold.png").stat().st_size > 0


@pytest.mark.slow
def test_predict_every_user_and_evaluate(cnngru_run, instacart_dir, tmp_path, capsys):
    out = tmp_path / "pred.parquet"
    assert main(["basket", "predict", "--checkpoint", str(cnngru_run), "--orders", str(instacart_dir),
                 "--k", "7", "--out", str(out)]) == 0
    pred = pd.read_parquet(out)
    assert list(pred.columns[:4]) == ["user_id", "rank", "product_id", "score"]
    assert pred["user_id"].nunique() == 200 and (pred.groupby("user_id")["rank"].max() == 7).all()
    assert pred.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    capsys.readouterr()
    assert main(["basket", "evaluate", "--checkpoint", str(cnngru_run), "--orders", str(instacart_dir),
                 "--k", "5", "--out", str(tmp_path / "m.json")]) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["k"] == 5 and result["users"] > 0
    assert 0 < result["recall@5"] <= 1
    # the basket is cut at the threshold picked on validation users, never re-picked on test users
    assert result["threshold"] == read_model(cnngru_run, "basket").state["threshold"]


@pytest.mark.slow
def test_xgboost_and_baseline_on_the_same_split(ray_session, instacart_dir, tmp_path):
    scores = {}
    for model, extra in (("xgboost", ["--set", "xgb.num_boost_round=20"]), ("topfreq", [])):
        run = tmp_path / model
        assert main(["basket", "train", "--orders", str(instacart_dir), "--out", str(run), "--model", model,
                     *extra]) == 0
        assert main(["basket", "evaluate", "--checkpoint", str(run), "--orders", str(instacart_dir),
                     "--out", str(tmp_path / f"{model}.json")]) == 0
        scores[model] = json.loads((tmp_path / f"{model}.json").read_text())
    assert scores["xgboost"]["users"] == scores["topfreq"]["users"]
    # the generator's shoppers have personal staples: both must find them far above chance (~0.01)
    assert scores["topfreq"]["recall@10"] > 0.2 and scores["xgboost"]["recall@10"] > 0.2


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["basket", "train", "--orders", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r")]) == 2
    assert main(["basket", "train", "--orders", "x.csv", "--out", str(tmp_path / "r"), "--set", "nope=1"]) == 2
    assert main(["basket", "evaluate", "--checkpoint", str(tmp_path), "--orders", "x.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("raydemand: error:") for line in err)
    assert "nope" in err[1] and "model.pt" in err[2]
