"""XGBoost baseline: a classifier over (user, candidate product) rows, trained with Ray Train's
`XGBoostTrainer`.

Candidates of a window are the products the user bought in its history plus the
`popular_candidates` most popular products; everything else is not recommended (-inf). Features:
the user's frequency/recency features of the product (features.py), its global popularity, the
length of the history and the target order's context. Rows are built from a sample of training
windows by Ray Data; early stopping watches the log loss on validation users' last orders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raydemand.basket.base import BasketPredictor, TrainData, register_predictor
from raydemand.basket.config import BasketConfig
from raydemand.basket.data import CONTEXT_DIM, Vocab, encode
from raydemand.basket.features import FEATURES

COLUMNS = [*FEATURES, "popularity", "log_history", *[f"context_{i}" for i in range(CONTEXT_DIM)]]
FREQ = FEATURES.index("freq")


def candidates(enc: dict[str, np.ndarray], n_popular: int) -> np.ndarray:
    """(B, P) bool: the user's history products and the most popular ones (the vocabulary is sorted)."""
    cand = enc["feats"][..., FREQ] > 0
    cand[:, :n_popular] = True
    return cand


def rows(enc: dict[str, np.ndarray], popularity: np.ndarray,
         n_popular: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window index, product index, features (R, len(COLUMNS))) of every candidate pair."""
    b, p = np.nonzero(candidates(enc, n_popular))
    x = np.concatenate([enc["feats"][b, p], popularity[p, None], np.log1p(enc["n_history"][b, None]),
                        enc["context"][b]], axis=1).astype(np.float32)
    return b, p, x


def rows_frame(enc: dict[str, np.ndarray], popularity: np.ndarray, n_popular: int) -> pd.DataFrame:
    b, p, x = rows(enc, popularity, n_popular)
    df = pd.DataFrame(x, columns=COLUMNS)
    df["label"] = enc["target"][b, p].astype(np.float32)
    return df


def _rows_batch(batch, vocab_state: dict, cfg_json: dict) -> pd.DataFrame:
    """Ray Data batch function: windows -> candidate rows."""
    cfg = BasketConfig.model_validate(cfg_json)
    vocab = Vocab.from_state(vocab_state)
    return rows_frame(encode(batch, vocab, cfg.data, cfg.decay), vocab.popularity, cfg.xgb.popular_candidates)


def _xgb_loop(config: dict[str, Any]) -> None:
    import ray.train
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback

    train = ray.train.get_dataset_shard("train").materialize().to_pandas()
    valid = ray.train.get_dataset_shard("valid").materialize().to_pandas()
    dtrain = xgboost.DMatrix(train[COLUMNS], label=train["label"])
    dvalid = xgboost.DMatrix(valid[COLUMNS], label=valid["label"])
    rounds, start = config["num_boost_round"], None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        start = RayTrainReportCallback.get_model(checkpoint)
        rounds -= start.num_boosted_rounds()
    xgboost.train(config["params"], dtrain, num_boost_round=max(rounds, 1), xgb_model=start,
                  evals=[(dtrain, "train"), (dvalid, "valid")], early_stopping_rounds=config["early_stopping_rounds"],
                  verbose_eval=False,
                  callbacks=[RayTrainReportCallback(metrics={"train_logloss": "train-logloss",
                                                             "val_logloss": "valid-logloss"}, frequency=50)])


@register_predictor("xgboost")
class XGBoostPredictor(BasketPredictor):
    def __init__(self, cfg: BasketConfig, vocab: Vocab):
        super().__init__(cfg, vocab)
        self.booster = None

    def fit(self, data: TrainData, run_dir: Path, callbacks: list | None = None) -> dict[str, Any]:
        import ray.data
        import ray.train
        from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

        from raydemand.ray_utils import gpu_available

        x = self.cfg.xgb
        windows = data.train_windows(self.cfg)
        if x.window_fraction < 1:
            windows = windows.random_sample(x.window_fraction, seed=self.cfg.seed)
        train_rows = windows.map_batches(_rows_batch, batch_format="pyarrow", fn_kwargs={
            "vocab_state": self.vocab.state(), "cfg_json": self.cfg.model_dump(mode="json")})
        valid_rows = ray.data.from_pandas(rows_frame(data.val, self.vocab.popularity, x.popular_candidates))
        use_gpu = gpu_available() if self.cfg.train.use_gpu is None else self.cfg.train.use_gpu
        params = {"objective": "binary:logistic", "eval_metric": ["logloss"], "tree_method": "hist",
                  "max_depth": x.max_depth, "eta": x.eta, "subsample": x.subsample, "seed": self.cfg.seed,
                  **({"device": "cuda"} if use_gpu else {})}
        trainer = XGBoostTrainer(
            _xgb_loop,
            train_loop_config={"params": params, "num_boost_round": x.num_boost_round,
                               "early_stopping_rounds": x.early_stopping_rounds},
            scaling_config=ray.train.ScalingConfig(num_workers=self.cfg.train.num_workers, use_gpu=use_gpu,
                                                   resources_per_worker={"CPU": self.cfg.train.cpus_per_worker}),
            run_config=ray.train.RunConfig(name="ray_train_xgb", storage_path=str(Path(run_dir).resolve()),
                                           failure_config=ray.train.FailureConfig(
                                               max_failures=self.cfg.train.max_failures), callbacks=callbacks),
            datasets={"train": train_rows, "valid": valid_rows},
        )
        result = trainer.fit()
        self.booster = RayTrainReportCallback.get_model(result.checkpoint)
        best = int(self.booster.attr("best_iteration") or self.booster.num_boosted_rounds() - 1)
        return {"rounds": self.booster.num_boosted_rounds(), "chosen_round": best,
                "best": {k: v for k, v in (result.metrics or {}).items() if isinstance(v, (int, float))}}

    def score(self, enc):
        import xgboost

        b, p, x = rows(enc, self.vocab.popularity, self.cfg.xgb.popular_candidates)
        out = np.full(enc["feats"].shape[:2], -np.inf)
        if len(b):
            best = self.booster.attr("best_iteration")
            limit = (0, int(best) + 1) if best is not None else (0, 0)
            out[b, p] = self.booster.predict(xgboost.DMatrix(x, feature_names=COLUMNS), iteration_range=limit)
        return out

    def state(self):
        return {"booster": bytes(self.booster.save_raw("json")).decode()}

    def load_state(self, state):
        import xgboost

        self.booster = xgboost.Booster()
        self.booster.load_model(bytearray(state["booster"].encode()))
