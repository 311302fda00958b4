"""The acceptance comparison: CrossAttnRNN, its ablations and every baseline on the same split.

    python -m raydemand.forecast.compare --train SOURCE --out DIR [--seeds 0,1,2] [--config YAML]
        [--set KEY=VALUE ...] [--variants full,generic,no_contrastive,image_only,caption_only,...]

Training, validation (latest releases of the training table) and test rows are built once per
caption source, so every forecaster sees the same rows, pool and retrieval rule. CrossAttnRNN runs
go through Ray Train (one run directory each under DIR/runs); baselines are closed-form. Each
CrossAttnRNN run is also recorded as `forecast train` would serve it (`crossattnrnn:VARIANT:served`:
the validation-chosen blend with the best baseline, `raydemand.forecast.guard`).
DIR gets results.csv (one row per forecaster x seed), summary.csv and summary.md (mean +- std
over seeds, WAPE/MAE/MSE on the unit scale, MAE on the normalised scale).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from raydemand.forecast.config import ForecastConfig

# name -> config overrides of CrossAttnRNN
VARIANTS = {
    "full": [],
    "generic": ["captions.captioner=generic"],
    "no_contrastive": ["loss.contrastive=0"],
    "image_only": ["model.use_caption=false"],
    "caption_only": ["model.use_image=false"],
    "mean_base": ["model.base=mean"],
    "residual": ["model.residual=true"],
    "level_shape": ["model.head=level_shape"],
    "seed_loss": ["loss.mae=0.6", "loss.mse=0.4", "loss.smape=0.01"],
    "seed_fusion": ["model.fusion=seed"],
    "no_attributes": ["model.attributes=false"],
    "no_trends": ["model.trends=false"],
    "no_neighbours": ["model.use_neighbours=false", "model.residual=false", "model.train_without_neighbours=true"],
}
BASELINES = ["zero", "median", "attribute_median", "last_season", "knn_attributes", "knn_image", "knn_caption",
             "retrieval", "retrieval_median", "des"]


def _with(cfg: ForecastConfig, overrides: list[str]) -> ForecastConfig:
    from raydemand.config import with_overrides

    return with_overrides(cfg, overrides)


def prepared(cfg: ForecastConfig, source: str, cache: Path):
    """(training data, test rows) for one caption source; embeddings cached under `cache`."""
    from raydemand.forecast import run as runs
    from raydemand.forecast.data import embed_products, load_table, prepare_rows, units_per_value

    data = runs.prepare_training(cfg, source, cache / "train")
    _, test_split = runs.table_split(source)
    upv = units_per_value(source)
    part = "all" if test_split is not None else "test"
    df = runs.select_rows(load_table(source, split=test_split), cfg.data, upv, part)
    test = prepare_rows(df, embed_products(df, cfg, cache / "test"), data.attributes, data.scale, upv,
                        trends=data.trends, trend_attributes=cfg.data.trend_attributes)
    return data, test


def share_image_embeddings(root: Path, captioner: str) -> None:
    """Copy another caption source's frozen image embeddings into `captioner`'s cache: images do
    not depend on captions, so a second caption source only embeds its captions."""
    import shutil

    for part in ("train", "test"):
        target = root / captioner / part / "image_emb"
        sources = [d / part / "image_emb" for d in sorted(root.glob("*")) if d.name != captioner]
        done = [d for d in sources if d.is_dir()]  # entries are keyed by encoder and inputs: safe to share
        if done and not target.exists():
            shutil.copytree(done[0], target)


def compare(cfg: ForecastConfig, source: str, out: str | Path, seeds: list[int], variants: list[str],
            baselines: list[str]) -> pd.DataFrame:
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.guard import fit_baselines, guarded, served_name
    from raydemand.forecast.metrics import both_scales, forecast_metrics

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict[str, tuple] = {}
    records = []

    def record(label, seed, forecaster, cfg_used, data, test, report, seconds, served=""):
        val_wape = forecast_metrics(forecaster.predict(data.val, data.pool), data.val.target, per_week=False)["wape"]
        pred = forecaster.predict(test, data.pool)
        m = both_scales(pred, test.target, data.scale, per_week=False)
        records.append({"forecaster": label, "seed": seed, "val_wape": val_wape, "wape": m["units"]["wape"],
                        "mae": m["units"]["mae"],
                        "mse": m["units"]["mse"], "mae_norm": m["normalised"]["mae"],
                        "mse_norm": m["normalised"]["mse"], "chosen_epoch": report.get("chosen_epoch"),
                        "seconds": round(seconds, 1), "train_rows": len(data.train), "val_rows": len(data.val),
                        "test_rows": len(test), "served": served})
        pd.DataFrame(records).to_csv(out / "results.csv", index=False)
        print(json.dumps(records[-1]), flush=True)

    def data_for(c: ForecastConfig):
        key = c.captions.captioner
        if key not in cache:
            share_image_embeddings(out / "cache", key)
            cache[key] = prepared(c, source, out / "cache" / key)
        return cache[key]

    data, test = data_for(cfg)
    for name in baselines:
        start = time.perf_counter()
        f = create_forecaster(name, cfg)
        report = f.fit(data.train, data.val, data.pool)
        record(name, None, f, cfg, data, test, report, time.perf_counter() - start)
    for variant in variants:  # variant-major: a cut-short run still has every seed of the first variants
        for seed in seeds:
            c = _with(cfg, [*VARIANTS[variant], f"seed={seed}"])
            d, t = data_for(c)
            start = time.perf_counter()
            f = create_forecaster("crossattnrnn", c)
            report = f.fit(d.train, d.val, d.pool, out / "runs" / f"{variant}_seed{seed}")
            record(f"crossattnrnn:{variant}", seed, f, c, d, t, report, time.perf_counter() - start)
            # what `forecast train` would serve: the guard's choice on validation (baselines.guard)
            served, info = guarded(c, f, f.predict(d.val, d.pool), fit_baselines(c, d), d)
            record(f"crossattnrnn:{variant}:served", seed, served, c, d, t, report, time.perf_counter() - start,
                   served_name(info["served"]))
    results = pd.DataFrame(records)
    summary = summarise(results)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(to_markdown(summary))
    return summary


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    cols = ["val_wape", "wape", "mae", "mse", "mae_norm"]
    g = results.groupby("forecaster", sort=False)[cols]
    mean, std = g.mean(), g.std(ddof=0).fillna(0.0)
    out = mean.join(std, lsuffix="", rsuffix="_std").reset_index()
    out["seeds"] = results.groupby("forecaster", sort=False)["seed"].count().to_numpy()
    return out


def to_markdown(summary: pd.DataFrame) -> str:
    lines = ["| forecaster | validation WAPE % | test WAPE % | MAE (units) | MSE (units) | MAE (normalised) | seeds |",
             "|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        lines.append(f"| {r['forecaster']} | {r['val_wape']:.2f} ± {r['val_wape_std']:.2f} | "
                     f"{r['wape']:.2f} ± {r['wape_std']:.2f} | {r['mae']:.4f} ± "
                     f"{r['mae_std']:.4f} | {r['mse']:.4f} ± {r['mse_std']:.4f} | {r['mae_norm']:.4f} ± "
                     f"{r['mae_norm_std']:.4f} | {int(r['seeds']) or 'deterministic'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from raydemand.cli import add_config_args
    from raydemand.config import load_config
    from raydemand.ray_utils import init_ray

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--baselines", default=",".join(BASELINES))
    add_config_args(p)
    args = p.parse_args(argv)
    cfg = load_config(ForecastConfig, args.config, args.overrides)
    init_ray()
    summary = compare(cfg, args.train, args.out, [int(s) for s in args.seeds.split(",")],
                      [v for v in args.variants.split(",") if v], [b for b in args.baselines.split(",") if b])
    print(to_markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
