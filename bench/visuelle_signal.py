"""How much the generated VISUELLE 2.0 data set can tell forecasters apart.

For each scale and seed: generation time, mean units per row and week, the generator's own WAPEs
on the test split (noise floor, oracle, median curve, category-and-colour median; noise_floor.json)
and those of a log-linear forecaster fitted on the training split from the files alone, with
growing inputs: attributes and release month; + the pre-release trend momentum read from
vis2_gtrends_data.csv; + two image measurements read from the PNGs. The steps show what each
input is worth to a model that reads it.

    PYTHONPATH=. python bench/visuelle_signal.py --scales 600,2000 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from raydemand.data.synth import synthesize

WEEKS = [str(i) for i in range(12)]


def _trend_features(folder: Path, table: pd.DataFrame) -> np.ndarray:
    """(rows, 3) log(mean of the last 8 / mean of the 52 weekly values before release) of the row's
    category, colour and fabric series: only weeks that start before the release date."""
    trends = pd.read_csv(folder / "vis2_gtrends_data.csv", parse_dates=["date"])
    first = trends["date"].iloc[0]
    last = ((pd.to_datetime(table["release_date"]) - first).dt.days.to_numpy() - 1) // 7
    out = []
    for column in ("category", "color", "fabric"):
        values = trends[table[column]].to_numpy(float)  # (weeks, rows)
        cols = np.arange(len(table))
        window = np.stack([values[last - k, cols] for k in range(52)], axis=1)  # (rows, 52), newest first
        out.append(np.log((window[:, :8].mean(axis=1) + 1) / (window.mean(axis=1) + 1)))
    return np.column_stack(out)


def _image_features(folder: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Garment area (opaque pixels / width^2) and lightness (mean luminance of opaque pixels),
    standardised within category and colour."""
    feats = {}
    for path in table["image_path"].unique():
        rgba = np.asarray(Image.open(folder / "images" / path)).astype(float)
        ink = rgba[..., 3] > 200
        feats[path] = ((rgba[..., 3] > 128).sum() / rgba.shape[1] ** 2, rgba[ink][:, :3].mean())
    f = pd.DataFrame([feats[p] for p in table["image_path"]], columns=["area", "light"], index=table.index)
    group = table["category"] + "/" + table["color"]
    return f.groupby(group).transform(lambda s: (s - s.mean()) / (s.std() + 1e-6)).fillna(0.0)


def _design(table: pd.DataFrame, extra: list[np.ndarray]) -> np.ndarray:
    aw = table["season"].str.startswith("AW").to_numpy(float)[:, None]
    month = pd.to_datetime(table["release_date"]).dt.month.astype(str)
    dummies = [pd.get_dummies(table[c].astype(str), dtype=float).to_numpy() for c in ("category", "color", "fabric",
                                                                                      "retail")]
    cat, col, fab = dummies[:3]
    price = np.log(table[["price"]].to_numpy(float))
    parts = [*dummies, cat * aw, col * aw, fab * aw, pd.get_dummies(month, dtype=float).to_numpy(), price, *extra]
    return np.column_stack(parts)


def _loglinear_wape(table: pd.DataFrame, train: np.ndarray, extra: list[np.ndarray]) -> float:
    """Ridge fit of log(total units + 1) per row; the curve is the median share of training rows of
    the same category and season half."""
    x, units = _design(table, extra), table[WEEKS].to_numpy(float)
    y = np.log(units.sum(axis=1) + 1)
    x = np.column_stack([np.ones(len(x)), (x - x[train].mean(0)) / (x[train].std(0) + 1e-9)])
    beta = np.linalg.solve(x[train].T @ x[train] + 1.0 * np.eye(x.shape[1]), x[train].T @ y[train])
    resid = y[train] - x[train] @ beta
    total = np.exp(x @ beta + resid.var() / 2) - 1
    share = units / np.maximum(units.sum(axis=1, keepdims=True), 1)
    key = table["category"] + table["season"].str[:2]
    curves = pd.DataFrame(share[train]).groupby(key[train].to_numpy()).median()
    pred = total[:, None] * curves.loc[key].to_numpy()
    test = ~train
    return round(100 * np.abs(pred[test] - units[test]).sum() / units[test].sum(), 2)


def run(scale: int, seed: int, root: Path) -> dict:
    out = root / f"v2_{scale}_{seed}"
    start = time.perf_counter()
    summary = synthesize("visuelle2", out, seed=seed, scale=scale, overwrite=True)
    seconds = time.perf_counter() - start
    table = pd.read_csv(out / "sales.csv", index_col=0)
    prices = pd.read_csv(out / "price_discount_series.csv", index_col=0)
    table["price"] = prices["price"].to_numpy()
    train = table["external_code"].to_numpy() <= pd.read_csv(out / "stfore_train.csv")["external_code"].max()
    trend = _trend_features(out, table)
    image = _image_features(out, table).to_numpy()
    return {"scale": scale, "seed": seed, "seconds": round(seconds, 1),
            "units_per_row_week": summary["units_per_row_week"], **summary["wape"],
            "loglinear_attributes": _loglinear_wape(table, train, []),
            "loglinear_+trends": _loglinear_wape(table, train, [trend]),
            "loglinear_+trends+image": _loglinear_wape(table, train, [trend, image])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="600,2000")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", help="folder for the generated data sets (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        for scale in map(int, args.scales.split(",")):
            for seed in map(int, args.seeds.split(",")):
                print(json.dumps(run(scale, seed, root)), flush=True)


if __name__ == "__main__":
    main()
