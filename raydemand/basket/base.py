"""The base class every basket method implements (neural models, XGBoost, frequency baselines),
their registry, and the run directory's model file.

A method is fitted on training users' windows, picks what it picks on validation users, and then
scores encoded windows (`data.encode`): (B, P) probabilities, -inf for products it does not
recommend. Everything it needs to score again goes into `state()`, which the run's model.pt
(`raydemand.runs`) stores next to the catalogue, the config and the threshold chosen on validation users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd

from raydemand.basket.config import BasketConfig
from raydemand.basket.data import Vocab

PREDICTORS: dict[str, type["BasketPredictor"]] = {}


def register_predictor(name: str) -> Callable[[type], type]:
    def wrap(cls):
        cls.name = name
        PREDICTORS[name] = cls
        return cls

    return wrap


def list_predictors() -> list[str]:
    """Every registered method: the networks, XGBoost and the frequency baselines."""
    _load_predictors()
    return sorted(PREDICTORS)


@dataclass
class TrainData:
    """What `fit` gets: training users' lines (in memory and as a file for the windows stage), and
    the encoded windows of validation users' last orders."""

    lines: pd.DataFrame
    lines_file: Path
    val: dict[str, np.ndarray]
    val_windows: Any  # pyarrow Table, for workers that encode it themselves
    _windows: Any = field(default=None, repr=False)

    def train_windows(self, cfg: BasketConfig):
        """Every order of every training user as a window: a Ray Dataset built once by the Ray Data
        windows stage and materialised (in the object store, spilled to disk when large), so that
        epochs re-read windows instead of re-grouping order lines."""
        if self._windows is None:
            from raydemand.basket.data import windows_dataset
            from raydemand.ray_utils import in_placement_group, outside_placement_group

            if in_placement_group():
                # In a Tune trial: the grouping runs outside the trial's placement group (see
                # `outside_placement_group`), into Parquet next to the lines; reading it back needs no shuffle.
                from raydemand.data.pipelines.stage_io import read_parquet

                folder = outside_placement_group(_write_windows, self.lines_file, cfg.data)
                self._windows = read_parquet(folder).materialize()
            else:
                self._windows = windows_dataset(self.lines_file, cfg.data, "all").materialize()
        return self._windows


def _write_windows(lines_file: Path, data_cfg) -> str:
    """Every window of `lines_file` into Parquet files in a folder beside it, named by the lines'
    identity and the data config: other lines or window settings never reuse it."""
    import shutil

    from raydemand.basket.data import windows_dataset
    from raydemand.data.pipelines.cache import digest, file_identity, is_current, mark_current
    from raydemand.data.pipelines.stage_io import write_dataset

    settings = {"lines": file_identity(lines_file), "data": data_cfg.model_dump(mode="json")}
    folder = Path(lines_file).with_suffix(f".windows-{digest(settings)}")
    if not is_current(folder, settings):
        shutil.rmtree(folder, ignore_errors=True)
        write_dataset(windows_dataset(lines_file, data_cfg, "all"), folder)
        mark_current(folder, settings)
    return str(folder)


class BasketPredictor:
    name: ClassVar[str]

    def __init__(self, cfg: BasketConfig, vocab: Vocab):
        self.cfg, self.vocab = cfg, vocab

    def fit(self, data: TrainData, run_dir: Path, callbacks: list | None = None) -> dict[str, Any]:
        """Learn from training users; returns a summary for metrics.json (history, chosen epoch).
        `callbacks` go to the Ray Train run (Tune's `TuneReportCallback`)."""
        return {}

    def score(self, enc: dict[str, np.ndarray]) -> np.ndarray:
        """(B, P) scores in [0, 1] (or -inf: not recommended) for encoded windows."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        del state


def create_predictor(cfg: BasketConfig, vocab: Vocab) -> BasketPredictor:
    _load_predictors()
    return PREDICTORS[cfg.model](cfg, vocab)


def _load_predictors() -> None:
    from raydemand.basket import baselines, neural, xgb  # noqa: F401  (they register themselves)


def save_model(run_dir: Path, predictor: BasketPredictor, threshold: float) -> Path:
    from raydemand import runs

    state = {"model": predictor.name, "vocab": predictor.vocab.state(), "threshold": float(threshold),
             "state": predictor.state()}
    return runs.write_model(run_dir, "basket", predictor.cfg, state)


@dataclass
class LoadedRun:
    """A trained run: its config, catalogue, method and threshold. `predict` answers in-process."""

    run_dir: Path
    cfg: BasketConfig
    vocab: Vocab
    predictor: BasketPredictor
    threshold: float

    def score(self, enc: dict[str, np.ndarray]) -> np.ndarray:
        return self.predictor.score(enc)

    def predict(self, orders: pd.DataFrame, k: int = 10) -> pd.DataFrame:
        """The next order of every user in an orders table (pandas, the orders contract): user_id, rank,
        product_id, score, in_basket (score >= the run's threshold). Validated; no Ray needed."""
        from raydemand.basket.predict import predict_frame

        return predict_frame(self, orders, k)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a `basket train` run directory (model.pt) for predict / evaluate / serve."""
    from raydemand.runs import read_model

    run_dir = Path(run_dir)
    model = read_model(run_dir, "basket")
    content = model.state
    cfg = BasketConfig.model_validate(model.config)
    vocab = Vocab.from_state(content["vocab"])
    predictor = create_predictor(cfg, vocab)
    predictor.load_state(content["state"])
    return LoadedRun(run_dir, cfg, vocab, predictor, float(content["threshold"]))
