"""A generated data set in exactly the VISUELLE 2.0 layout, with real Fashion-MNIST product images.

One row per product and store (`retail`). Weekly sales over the 12 weeks after release are drawn
from a negative binomial whose mean depends on what a forecaster is meant to learn:
- the image: the class itself, and within its class the garment's area (share of ink pixels) and
  its shade (how light the garment is drawn); the dye is the `color` attribute;
- attributes: category and colour popularity, colour and category x season (coats, pullovers,
  ankle boots sell in AW; sandals and t-shirts in SS; dark colours in AW, bright ones in SS),
  fabric x season, price relative to the category;
- the Google-Trends-like series of the product's category, colour and fabric over the 52 weeks
  before release (vis2_gtrends_data.csv): their recent momentum, the last 8 weeks against the 52;
- store size (`retail`);
and the curve rises then decays with a shape set by category and season, lifted by markdowns
(price_discount_series.csv). Little is left that no input explains: a per-product effect (sd
0.1 in log demand) and a small spread of the curve shape. Restocks keep stock ahead of sales.
Products are numbered by release date; the latest ~17% form the test split.

The summary (and noise_floor.json, not part of the real layout) gives the WAPE on the test split of
the true mean curve under its own noise (the noise floor), of an oracle that knows every input's
effect but not the unexplained terms, and of two baselines: the median training curve and the
category-and-colour median curve.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from raydemand.data.fashion_mnist import load_fashion_mnist
from raydemand.data.schema import HORIZON, TARGET_COLUMNS
from raydemand.data.synth import register_generator

# Indexed by Fashion-MNIST class (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt,
# Sneaker, Bag, Ankle boot): category name, log popularity, log(AW sales / SS sales), base price.
CATEGORIES = ["t-shirt", "trousers", "pullover", "dress", "coat", "sandals", "shirt", "sneakers", "bag", "ankle boots"]
CAT_BASE = np.array([0.45, -0.15, 0.15, 0.50, 0.00, -0.30, 0.05, 0.25, -0.60, -0.25])
CAT_AW = np.array([-0.80, 0.10, 0.80, -0.30, 1.10, -1.20, -0.10, 0.00, 0.00, 0.90])
CAT_PRICE = np.array([15.0, 30.0, 35.0, 40.0, 80.0, 25.0, 30.0, 50.0, 35.0, 60.0])
# Real VISUELLE colour names: RGB used to dye the image, share of products, log popularity, log AW/SS.
COLORS = ["black", "blue", "white", "grey", "brown", "red", "green", "yellow", "orange", "violet"]
COLOR_RGB = np.array([[30, 30, 30], [40, 70, 160], [242, 240, 232], [128, 128, 128], [110, 70, 40],
                      [190, 30, 40], [50, 120, 60], [230, 200, 40], [235, 130, 30], [130, 70, 160]], dtype=float)
COLOR_SHARE = np.array([0.22, 0.18, 0.14, 0.10, 0.08, 0.08, 0.06, 0.05, 0.05, 0.04])
COLOR_BASE = np.array([0.25, 0.20, 0.15, 0.05, -0.10, 0.00, -0.15, -0.20, -0.30, -0.35])
COLOR_AW = np.array([0.40, 0.00, -0.40, 0.25, 0.50, -0.10, 0.00, -0.60, -0.50, -0.10])
# Real VISUELLE fabric names; log AW/SS; the fabrics each class is mostly made of.
FABRICS = ["cotton", "linen", "viscose twill", "georgette", "crepe", "tulle", "lace", "acrylic", "angora", "cloth",
           "faux leather", "dark jeans"]
FABRIC_AW = np.array([0.0, -0.5, 0.0, -0.2, 0.0, -0.1, -0.1, 0.3, 0.5, 0.3, 0.2, 0.1])
CLASS_FABRICS = [[0, 1, 5], [11, 0, 2], [7, 8, 0], [3, 4, 6], [9, 8, 10], [10, 0], [0, 1, 2], [10, 0], [10, 9], [10]]

FIRST_RELEASE, LAST_RELEASE = np.datetime64("2016-12-01"), np.datetime64("2019-11-30")
TRENDS_FIRST, TRENDS_WEEKS = np.datetime64("2015-10-05"), 220  # Mondays 2015-10-05 .. 2019-12-16
SEASON_FOLDERS = ["PE17", "AI17", "PE18", "AI18", "PE19", "AI19"]
TEST_SHARE = 0.17
# Launch curve t^rise exp(-t/life) per category: coats and boots build slowly and last, t-shirts peak early.
CAT_RISE = np.array([0.8, 1.0, 1.2, 0.9, 1.6, 1.0, 1.0, 1.1, 0.8, 1.4])
CAT_LIFE = np.array([2.0, 3.0, 2.8, 2.2, 3.3, 2.0, 2.6, 3.2, 3.4, 3.0])
MEAN_UNITS = 60.0  # units per product x store over 12 weeks for an average product (real data: mean 15;
# higher so that row-level sales carry the signal: the noise floor is about 30% WAPE, not 80%)
DISPERSION = 15.0  # negative binomial shape: variance = mean + mean^2 / DISPERSION
PRODUCT_SD = 0.10  # log demand no input explains
CURVE_SD = 0.08  # per-product log spread of the curve's rise and life around its category and season
INK_EFFECT, SHADE_EFFECT = 0.30, 0.25  # log demand per within-class sd of garment area and of shade
# Trends: log demand per unit of log(mean of the last 8 pre-release weeks / mean of the 52), for the
# product's category, colour and fabric series; a momentum sd of about 0.15 per series.
MOMENTUM_WEEKS, TREND_WINDOW = 8, 52
MOMENTUM_EFFECT = np.array([1.8, 1.3, 1.1])
DRIFT_PHI = 0.96  # weekly persistence of a trend series' drift
RESTOCK_EVERY = 2  # weeks between restock decisions
MIN_GROUP = 10  # training rows a category-and-colour group needs before the attribute median uses it
NOISE_FLOOR_FILE = "noise_floor.json"  # not part of the real layout
TABLE_COLUMNS = ["external_code", "retail", "season", "category", "color", "image_path", "fabric",
                 "release_date", "restock", *TARGET_COLUMNS]


def _products(rng: np.random.Generator, n: int) -> dict:
    """Per-product attributes, numbered 1..n in release-date order."""
    images, labels = load_fashion_mnist()
    pick = rng.permutation(len(images))[np.arange(n) % len(images)]
    gray, cls = images[pick], labels[pick]
    days = np.sort(rng.integers(0, int((LAST_RELEASE - FIRST_RELEASE).astype(int)) + 1, n))
    dates = FIRST_RELEASE + days
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    year = dates.astype("datetime64[Y]").astype(int) + 1970
    aw = (month >= 6) & (month <= 11)
    season_year = (np.where(month == 12, year + 1, year)) % 100  # a December release opens next year's SS
    color = rng.choice(len(COLORS), n, p=COLOR_SHARE / COLOR_SHARE.sum())
    typical = np.array([CLASS_FABRICS[c][i % len(CLASS_FABRICS[c])] for c, i in zip(cls, rng.integers(0, 60, n))])
    fabric = np.where(rng.random(n) < 0.75, typical, rng.integers(0, len(FABRICS), n))
    ink_mask = gray > 32
    ink = ink_mask.mean(axis=(1, 2))
    shade = (gray * ink_mask).sum(axis=(1, 2)) / (255 * np.maximum(ink_mask.sum(axis=(1, 2)), 1))
    price = CAT_PRICE[cls] * rng.lognormal(0.0, 0.25, n)
    code = np.arange(1, n + 1)
    folder = [f"{'AI' if a else 'PE'}{y:02d}" for a, y in zip(aw, season_year)]
    return {
        "code": code, "gray": gray, "cls": cls, "dates": dates, "aw": aw, "color": color, "fabric": fabric,
        "ink": ink, "shade": shade, "price": price,
        "season": np.array([f"{'AW' if a else 'SS'}{y:02d}" for a, y in zip(aw, season_year)], dtype=object),
        "image_path": np.array([f"{f}/{c:05d}.png" for f, c in zip(folder, code)], dtype=object),
    }


def _gtrends(rng: np.random.Generator) -> pd.DataFrame:
    """Weekly 0..100 popularity per category, colour and fabric: level, yearly cycle, drift, noise.

    The drift is a slow mean-reverting walk (half-life about 4 months) large against the yearly
    cycle, so a series' recent momentum says more than the calendar does.
    """
    dates = TRENDS_FIRST + 7 * np.arange(TRENDS_WEEKS)
    winter = np.cos(2 * np.pi * ((dates - np.datetime64("2016-01-15")).astype(int) / 365.25))  # 1 mid-January
    columns = {"date": np.datetime_as_string(dates, unit="D")}
    for names, aw, decimals in ((CATEGORIES, CAT_AW, 1), (COLORS, COLOR_AW, 0), (FABRICS, FABRIC_AW, 0)):
        k = len(names)
        level = rng.uniform(35, 60, k)
        shocks = rng.normal(0, 2.2, (TRENDS_WEEKS, k))
        drift = np.zeros((TRENDS_WEEKS, k))
        drift[0] = shocks[0] / np.sqrt(1 - DRIFT_PHI**2)  # start in the stationary distribution
        for t in range(1, TRENDS_WEEKS):
            drift[t] = DRIFT_PHI * drift[t - 1] + shocks[t]
        noise = rng.normal(0, 1.5, (TRENDS_WEEKS, k))
        values = np.clip(level + 5 * aw * winter[:, None] + drift + noise, 0, 100).round(decimals)
        for j, name in enumerate(names):
            columns[name] = values[:, j] if decimals else values[:, j].astype(int)
    return pd.DataFrame(columns)


def _last_week_before(dates: np.ndarray) -> np.ndarray:
    """Index of the last trends week (a Monday) strictly before each date."""
    return ((dates - TRENDS_FIRST).astype(int) - 1) // 7


def _momentum(trends: pd.DataFrame, p: dict) -> np.ndarray:
    """(products, 3) log(mean of the last 8 weeks / mean of the 52 weeks) before release of the
    product's category, colour and fabric series, read from the rounded values written to the file."""
    last = _last_week_before(p["dates"])  # every row's release date is on or after the product's date
    out = np.zeros((len(last), 3))
    for j, (names, which) in enumerate(((CATEGORIES, p["cls"]), (COLORS, p["color"]), (FABRICS, p["fabric"]))):
        series = trends[names].to_numpy(float)  # (weeks, series)
        cum = np.vstack([np.zeros((1, len(names))), np.cumsum(series, axis=0)])  # (weeks + 1, series)
        recent = (cum[last + 1, which] - cum[last + 1 - MOMENTUM_WEEKS, which]) / MOMENTUM_WEEKS
        year = (cum[last + 1, which] - cum[last + 1 - TREND_WINDOW, which]) / TREND_WINDOW
        out[:, j] = np.log((recent + 1) / (year + 1))
    return out


def _within_class_z(values: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Standardise within each class: what counts is a garment's area or shade among its own kind."""
    z = np.zeros(len(values))
    for c in np.unique(cls):
        m = cls == c
        z[m] = (values[m] - values[m].mean()) / (values[m].std() + 1e-6)
    return z


def _log_demand(p: dict, momentum: np.ndarray) -> np.ndarray:
    """Log mean demand of each product that its inputs explain, before store size and the curve."""
    cls, color, fabric, side = p["cls"], p["color"], p["fabric"], np.where(p["aw"], 0.5, -0.5)
    rel_price = np.log(p["price"] / CAT_PRICE[cls])
    return (CAT_BASE[cls] + COLOR_BASE[color] + side * (CAT_AW[cls] + COLOR_AW[color] + FABRIC_AW[fabric])
            + INK_EFFECT * _within_class_z(p["ink"], cls) + SHADE_EFFECT * _within_class_z(p["shade"], cls)
            + momentum @ MOMENTUM_EFFECT - 0.6 * rel_price)


def _rows(rng: np.random.Generator, n: int, n_stores: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Store ids and sizes; (product, store) index pairs, each product in a random set of stores."""
    store_id = np.sort(rng.choice(np.arange(1, 126), n_stores, replace=False))
    size = rng.lognormal(0.0, 0.35, n_stores)
    size /= size.mean()
    count = np.clip(rng.binomial(n_stores, min(1.0, max(0.18, 3 / n_stores)), n), 1, n_stores)
    # Gumbel top-k: each product's stores drawn without replacement, larger stores more often.
    keys = np.log(size) + rng.gumbel(size=(n, n_stores))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    prod, store = np.nonzero(rank < count[:, None])
    return store_id, size, prod, store


def _discounts(rng: np.random.Generator, eta_rows: np.ndarray) -> np.ndarray:
    """Weekly discount fractions (rows, 12): one markdown, earlier for products that sell less."""
    z = (eta_rows - eta_rows.mean()) / (eta_rows.std() + 1e-6)
    start = np.clip(np.round(8 + 2 * z + rng.normal(0, 1.5, len(z))), 3, HORIZON).astype(int)
    depth = rng.choice([0.1, 0.15, 0.2, 0.3, 0.4, 0.5], len(z))
    return np.where(np.arange(HORIZON)[None, :] >= start[:, None], depth[:, None], 0.0)


def _curves(p: dict, spread: np.ndarray) -> np.ndarray:
    """Per-product weekly shares (n, 12): t^rise exp(-t/life) rises to a peak in weeks 1-5, then decays.

    Rise and life follow the category; in its own season (coats in AW) a product builds longer and
    lasts longer. `spread` (n, 2) is the per-product log deviation of rise and life (zeros: the
    shape the inputs explain).
    """
    t = np.arange(1, HORIZON + 1)[None, :]
    in_season = np.where(p["aw"], 0.5, -0.5) * CAT_AW[p["cls"]]
    rise = (CAT_RISE[p["cls"]] * np.exp(0.15 * in_season + spread[:, 0]))[:, None]
    life = (CAT_LIFE[p["cls"]] * np.exp(0.20 * in_season + spread[:, 1]))[:, None]
    w = t**rise * np.exp(-t / life)
    return w / w.sum(axis=1, keepdims=True)


def _restocks(rng: np.random.Generator, sales: np.ndarray, released: np.ndarray) -> tuple[np.ndarray, list]:
    """Deliveries every RESTOCK_EVERY weeks that keep stock ahead of the next weeks' sales.

    Returns the total delivered per row and, per delivery round, (rows, qty, delivery dates).
    """
    delivered, sold = np.zeros(len(sales), dtype=np.int64), np.zeros(len(sales), dtype=np.int64)
    events = []
    for start in range(0, HORIZON, RESTOCK_EVERY):
        block = sales[:, start:start + RESTOCK_EVERY].sum(axis=1)
        target = np.ceil(block * rng.uniform(1.0, 1.4, len(block))).astype(np.int64)
        qty = np.maximum(0, target - (delivered - sold))
        if start == 0:
            qty = np.maximum(qty, 2)  # the first delivery stocks the shelf even for a slow start
        delivered += qty
        sold += block
        rows = np.flatnonzero(qty)
        events.append((rows, qty[rows], released[rows] + 7 * start))
    return delivered, events


def _iso_week_year(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(dates, return_inverse=True)
    iso = pd.DatetimeIndex(unique).isocalendar()
    return iso["week"].to_numpy(np.int64)[inverse], iso["year"].to_numpy(np.int64)[inverse]


def _write_images(out: Path, rng: np.random.Generator, p: dict) -> int:
    """Dye each grey image with its colour; RGBA PNG, transparent background, varying size."""
    for name in SEASON_FOLDERS:
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
    n = len(p["code"])
    height = rng.integers(64, 129, n)
    width = np.round(height * rng.uniform(0.62, 0.85, n)).astype(int)

    def write(chunk: range) -> None:
        g = p["gray"][chunk].astype(float) / 255  # (c, 28, 28)
        rgb = COLOR_RGB[p["color"][chunk]][:, None, None, :] * (0.35 + 0.65 * g[..., None])  # (c, 28, 28, 3)
        alpha = np.clip(g * 4, 0, 1)[..., None]
        rgba = np.concatenate([rgb, 255 * alpha], axis=-1).round().astype(np.uint8)
        for k, i in enumerate(chunk):
            w, h = int(width[i]), int(height[i])
            canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            canvas.paste(Image.fromarray(rgba[k], "RGBA").resize((w, w), Image.BILINEAR), (0, (h - w) // 2))
            canvas.save(out / "images" / p["image_path"][i], compress_level=1)

    chunks = [range(s, min(s + 2000, n)) for s in range(0, n, 2000)]
    with ThreadPoolExecutor() as pool:  # PIL releases the GIL while resizing and encoding
        list(pool.map(write, chunks))
    return n


def _write_labels(out: Path) -> None:
    import torch  # only here: the rest of the generator needs no torch

    for name, values in (("category", CATEGORIES), ("color", COLORS), ("fabric", FABRICS)):
        torch.save({v: i for i, v in enumerate(values)}, out / f"{name}_labels.pt")


def _wape(pred: np.ndarray, sales: np.ndarray) -> float:
    return round(100.0 * float(np.abs(pred - sales).sum() / max(sales.sum(), 1)), 2)


def _group_median(sales: np.ndarray, train: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Per-week median training curve of each row's first group with at least MIN_GROUP training rows
    (e.g. category and colour, then category), else of all training rows. (rows, 12)."""
    pred = np.broadcast_to(np.median(sales[train], axis=0), sales.shape).copy()
    done = np.zeros(len(sales), dtype=bool)
    for key in groups:
        for g in np.unique(key[~done]):
            rows, members = ~done & (key == g), train & (key == g)
            if members.sum() >= MIN_GROUP:
                pred[rows] = np.median(sales[members], axis=0)
                done |= rows
    return pred


def _signal(sales: np.ndarray, mean: np.ndarray, oracle: np.ndarray, test: np.ndarray,
            cat_color: np.ndarray, cat: np.ndarray) -> dict:
    """WAPE (%, units) on the test split of the true mean curve (the noise floor, also over all rows),
    of the oracle (every input's effect, none of the unexplained terms) and of two baselines."""
    train = ~test
    if not test.any():  # a one-product data set has no test split: report on the training rows
        test = train
    attribute = _group_median(sales, train, [cat_color, cat])
    return {"noise_floor": _wape(mean[test], sales[test]), "noise_floor_all": _wape(mean, sales),
            "oracle": _wape(oracle[test], sales[test]),
            "median_curve": _wape(np.median(sales[train], axis=0)[None, :], sales[test]),
            "attribute_median": _wape(attribute[test], sales[test])}


@register_generator("visuelle2")
def generate(out: Path, seed: int, scale: int) -> dict:
    rng = np.random.default_rng(seed)
    p = _products(rng, scale)
    trends = _gtrends(rng)
    explained = _log_demand(p, _momentum(trends, p))
    eta = explained + rng.normal(0, PRODUCT_SD, scale)
    n_stores = min(110, max(5, scale // 10))
    store_id, size, prod, store = _rows(rng, scale, n_stores)
    released = p["dates"][prod] + rng.integers(0, 7, len(prod))  # a store may launch up to 6 days late

    discount = _discounts(rng, eta[prod])
    lift = 1 + 1.5 * discount  # (rows, 12)
    spread = rng.normal(0, CURVE_SD, (scale, 2))
    mean = (MEAN_UNITS * size[store] * np.exp(eta[prod]))[:, None] * _curves(p, spread)[prod] * lift  # (rows, 12)
    oracle = (MEAN_UNITS * size[store] * np.exp(explained[prod]))[:, None] * _curves(p, 0 * spread)[prod] * lift
    sales = rng.negative_binomial(DISPERSION, DISPERSION / (DISPERSION + mean))  # (rows, 12)
    # Real rows all sold something (a store lists a product once it sells); keep that property.
    empty = np.flatnonzero(sales.sum(axis=1) == 0)
    sales[empty, mean[empty].argmax(axis=1)] = 1
    restock, events = _restocks(rng, sales, released)

    n_test = max(1, int(round(TEST_SHARE * scale))) if scale > 1 else 0  # train keeps at least one product
    test = p["code"][prod] > scale - n_test
    scalar = float(sales[~test].max())

    table = pd.DataFrame({
        "external_code": p["code"][prod], "retail": store_id[store], "season": p["season"][prod],
        "category": np.array(CATEGORIES, dtype=object)[p["cls"][prod]],
        "color": np.array(COLORS, dtype=object)[p["color"][prod]], "image_path": p["image_path"][prod],
        "fabric": np.array(FABRICS, dtype=object)[p["fabric"][prod]],
        "release_date": np.datetime_as_string(released, unit="D"), "restock": restock,
        **{c: sales[:, i] for i, c in enumerate(TARGET_COLUMNS)},
    })
    table.to_csv(out / "sales.csv")  # raw units, with the real file's unnamed index column
    scaled = table.astype({c: float for c in ["restock", *TARGET_COLUMNS]})
    scaled[["restock", *TARGET_COLUMNS]] /= scalar
    scaled[~test].to_csv(out / "stfore_train.csv", index=False)
    scaled[test].to_csv(out / "stfore_test.csv", index=False)
    np.save(out / "stfore_sales_norm_scalar.npy", np.array(scalar))

    prices = pd.DataFrame({"external_code": table["external_code"], "retail": table["retail"],
                           **{c: discount[:, i] for i, c in enumerate(TARGET_COLUMNS)},
                           "price": (p["price"] / p["price"].max()).round(6)[prod]})
    prices.to_csv(out / "price_discount_series.csv")

    rows = np.concatenate([r for r, _, _ in events])
    week, year = _iso_week_year(np.concatenate([d for _, _, d in events]))
    restocks = pd.DataFrame({"external_code": table["external_code"].to_numpy()[rows],
                             "retail": table["retail"].to_numpy()[rows], "week": week, "year": year,
                             "qty": np.concatenate([q for _, q, _ in events])})
    restocks.sort_values(["external_code", "retail", "year", "week"], kind="stable").to_csv(
        out / "restocks.csv", index=False)
    trends.to_csv(out / "vis2_gtrends_data.csv", index=False)
    _write_labels(out)
    images = _write_images(out, rng, p)
    signal = _signal(sales, mean, oracle, test, p["cls"][prod] * len(COLORS) + p["color"][prod], p["cls"][prod])
    (out / NOISE_FLOOR_FILE).write_text(json.dumps(signal, indent=2) + "\n")
    return {"rows": len(table), "products": scale, "stores": n_stores, "train_rows": int((~test).sum()),
            "test_rows": int(test.sum()), "images": images, "norm_scalar": scalar,
            "units_per_row_week": round(float(sales.mean()), 3), "wape": signal}
