"""`design score`: preference per category (the seed's Table 2) and feature-space quality of one or
more SAMPLES.npz files against a trained scorer.

The comparison table has a row per category and a column per samples file (named by the GAN that
made it); cells are preference %. The Markdown adds the scorer's held-out real test images as a
reference column (what a perfect generator would get) and the chance level. Feature-space values
compare generated images with the scorer's real test images (equal numbers, class-balanced by the
samples' labels), next to the real-vs-real reference (real validation vs real test images) saved
with the scorer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raydemand.design.metrics import feature_metrics, preference
from raydemand.design.scorer import ScorerRun
from raydemand.errors import InputError
from raydemand.io import atomic_write, write_table


def read_samples(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """images, labels, categories and a name (the npz's `gan`, else the file stem), validated."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such samples file (write one with `raydemand design generate`)")
    try:
        packed = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: not an npz file: {e}") from None
    for key in ("images", "labels", "categories"):
        if key not in packed:
            raise InputError(f"{path}: missing array '{key}' (expected images, labels, categories)")
    images, labels, categories = packed["images"], packed["labels"], [str(c) for c in packed["categories"]]
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise InputError(f"{path}: 'images' must be uint8 (N, H, W) or (N, H, W, 3), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: 'labels' must be int (N,) with N = {len(images)}, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(categories)):
        raise InputError(f"{path}: 'labels' must index 'categories' (0..{len(categories) - 1}), "
                         f"got {labels.min()}..{labels.max()}")
    name = str(packed["gan"]) if "gan" in packed else path.stem
    return images, labels.astype(np.int64), categories, name


def _balanced_real(reference: dict[str, np.ndarray], labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the real test features with (as far as there are images) the same count per
    category as `labels`, and the matching subset of `labels`."""
    real_labels = reference["test_labels"]
    pick, keep = [], []
    for c in np.unique(labels):
        pool = np.flatnonzero(real_labels == c)
        want = np.flatnonzero(labels == c)
        n = min(len(pool), len(want))
        pick.append(rng.choice(pool, n, replace=False))
        keep.append(want[:n])
    return np.concatenate(pick), np.concatenate(keep)


def score_images(scorer: ScorerRun, images: np.ndarray) -> list[dict[str, Any]]:
    """Per image of uint8 (N, H, W) or (N, H, W, 3): preference % per category (the scorer's softmax)
    and the top category; what the Serve endpoint /v1/design/score answers for a design."""
    probs, _ = scorer.predict(images)
    return [{"preference": {c: 100 * float(p) for c, p in zip(scorer.categories, row)},
             "top_category": scorer.categories[int(np.argmax(row))]} for row in probs]


def score_samples(scorer: ScorerRun, path: str | Path, k: int = 5, seed: int = 0) -> dict[str, Any]:
    images, labels, categories, name = read_samples(path)
    labels = scorer.labels_from(labels, categories)
    probs, feats = scorer.predict(images)
    record: dict[str, Any] = {"name": name, "file": str(path), "images": int(len(images)),
                              "per_category": preference(probs, labels, scorer.categories)}
    if scorer.reference is not None:
        real, keep = _balanced_real(scorer.reference, labels, np.random.default_rng(seed))
        if len(real) > k + 1:
            record["feature_space"] = {**feature_metrics(scorer.reference["test_features"][real], feats[keep], k),
                                       "n": int(len(real))}
    return record


def score(scorer: ScorerRun, paths: list[str | Path], k: int = 5, seed: int = 0) -> dict[str, Any]:
    """Score every samples file; the record holds per-file results, the table and the reference."""
    results = [score_samples(scorer, p, k, seed) for p in paths]
    names = [r["name"] for r in results]
    if len(set(names)) < len(names):  # two files from the same GAN: tell them apart by file name
        names = [f"{r['name']} ({Path(r['file']).stem})" for r in results]
    rows = [c for c in scorer.categories if any(c in r["per_category"] for r in results)] + ["all"]
    table = pd.DataFrame({n: [r["per_category"].get(c, {}).get("preference", np.nan) for c in rows]
                          for n, r in zip(names, results)}, index=pd.Index(rows, name="category"))
    recognised = pd.DataFrame({n: [r["per_category"].get(c, {}).get("recognised", np.nan) for c in rows]
                               for n, r in zip(names, results)}, index=pd.Index(rows, name="category"))
    features = pd.DataFrame({n: r.get("feature_space", {}) for n, r in zip(names, results)})
    metrics_file = scorer.run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if scorer.reference is not None and metrics.get("real_vs_real"):
        features["real vs real"] = pd.Series(metrics["real_vs_real"])
    # The scorer's held-out real test images scored the same way: what a perfect generator would get.
    real_test = metrics.get("test_real") or {}
    return {"scorer": str(scorer.run_dir), "results": results, "preference": table, "recognised": recognised,
            "feature_space": features, "categories": list(scorer.categories),
            "real_test": {c: real_test[c] for c in rows if c in real_test}}


def write_report(report: dict[str, Any], out: str | Path) -> list[Path]:
    """preference.csv/.md (Table 2), recognised.csv, feature_space.csv and score.json in folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for key in ("preference", "recognised", "feature_space"):
        df = report[key].reset_index().rename(columns={"index": "metric"})
        written.append(write_table(df.round(4), out / f"{key}.csv"))
    with atomic_write(out / "preference.md", "w") as f:
        f.write(markdown(report))
    with atomic_write(out / "score.json", "w") as f:
        json.dump({"scorer": report["scorer"], "results": report["results"], "real_test": report.get("real_test", {})},
                  f, indent=2, default=float)
    return written + [out / "preference.md", out / "score.json"]


def markdown_table(df: pd.DataFrame, digits: int) -> str:
    """A pipe table with the index as the first column (pandas' to_markdown needs tabulate)."""
    head = [str(df.index.name or "")] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(df.columns)) + "|"]
    for idx, row in df.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines)


def _with_real(df: pd.DataFrame, real_test: dict[str, dict[str, float]], key: str) -> pd.DataFrame:
    """`df` plus a column of the scorer's held-out real test images (the reference), where known."""
    if not real_test:
        return df
    return df.assign(**{"real test images": [real_test.get(c, {}).get(key, np.nan) for c in df.index]})


def markdown(report: dict[str, Any]) -> str:
    real_test = report.get("real_test") or {}
    k = len(report.get("categories") or [])
    chance = f"; chance {100 / k:.1f}%" if k else ""
    parts = ["Preference % (mean scorer probability of the intended category)\n\n",
             markdown_table(_with_real(report["preference"], real_test, "preference"), 2),
             f"\n\nRecognised % (the scorer's top category is the intended one{chance})\n\n",
             markdown_table(_with_real(report["recognised"], real_test, "recognised"), 1)]
    if not report["feature_space"].empty:
        parts += ["\n\nScorer feature space (not Inception FID): Fréchet distance (fd), precision/recall, "
                  "density/coverage, n images per side\n\n", markdown_table(report["feature_space"], 4)]
    return "".join(parts) + "\n"
