"""From a product table to model inputs: captions, cached frozen embeddings, scaling, retrieval.

`prepare_rows` joins a validated product table with its captions and the embedding cache (run once
per product through the foundation's Ray Data embeddings stage, then reused every epoch).
`model_inputs` adds each row's similar past products from a `Rows` pool of known sales.
Sales are normalised by one number fitted on the training rows (their mean weekly units), so the
model sees ~1.0 for an average week whatever the data set.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from raydemand.data.schema import TARGET_COLUMNS
from raydemand.errors import InputError
from raydemand.forecast.config import ForecastConfig, RetrievalConfig
from raydemand.forecast.retrieval import Neighbours, Side, neighbour_curves, retrieve
from raydemand.forecast.trends import TrendSeries, row_trends

if TYPE_CHECKING:
    from raydemand.data.pipelines.embeddings import EmbeddingsConfig

UNITS_FILE = "units_per_value.json"


@dataclass
class Rows:
    """Prepared rows of a product table (one per product, or product x store)."""

    keys: pd.DataFrame  # external_code (+ retail), release_date, in table order
    side: Side  # what retrieval compares
    caption: np.ndarray  # (N, Dc) float32 frozen caption vectors, zeros where missing
    has_caption: np.ndarray  # (N,) bool
    image: np.ndarray  # (N, Di) float32 frozen image vectors, zeros where missing
    has_image: np.ndarray  # (N,) bool
    group: np.ndarray  # (N,) int64 product index (rows of one product share it)
    target: np.ndarray | None  # (N, 12) normalised weekly sales, None when unknown
    # A retrieval pool's launch profile (12,): the mean weekly shape of the training curves, which
    # fills in its rows' weeks not yet visible to a target (see `retrieval.complete_curves`).
    profile: np.ndarray | None = None
    # The exogenous series of the 52 weeks before each row's release (`raydemand.forecast.trends`):
    # (N, S, 52) float32 values / 100 and (N, S, 52) bool observed weeks, S = data.trend_attributes;
    # None where the table ships no series.
    trends: np.ndarray | None = None
    trend_observed: np.ndarray | None = None
    # Runs with a fine-tuned image trunk: one decoded image per product (P + 1, 3, H, W) float16,
    # normalised as the images pipeline does, entry 0 all zeros for rows without an image; rows of one
    # product (product x store) share theirs through `pixel_index` (N,) int64. None: cached vectors only.
    pixels: np.ndarray | None = None
    pixel_index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, idx: np.ndarray) -> "Rows":
        s = self.side
        side = Side(s.codes[idx], s.release[idx], s.attributes[idx], s.caption[idx], s.image[idx], s.columns)
        return Rows(self.keys.iloc[idx].reset_index(drop=True), side, self.caption[idx], self.has_caption[idx],
                    self.image[idx], self.has_image[idx], self.group[idx],
                    None if self.target is None else self.target[idx], self.profile,
                    *(None if a is None else a[idx] for a in (self.trends, self.trend_observed)),
                    self.pixels, None if self.pixel_index is None else self.pixel_index[idx])


def units_per_value(source: str | Path) -> float:
    """Units per stored sales value: VISUELLE folders store units / a scalar, other tables store units."""
    from raydemand.data.visuelle import SCALAR_FILES, read_norm_scalar

    path = Path(str(source))
    if path.is_dir() and any((path / f).exists() for f in SCALAR_FILES):
        return read_norm_scalar(path)
    return 1.0


def load_table(source: str | Path, split: str | None = None, require_targets: bool = True) -> pd.DataFrame:
    from raydemand.data.sources import load_products

    df = load_products(source, split=split, require_targets=require_targets, check_images=True)
    if df.empty:
        raise InputError(f"{source}: the product table has no rows")
    return df


def _products(df: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in df.columns if c not in TARGET_COLUMNS]
    return df[cols].drop_duplicates("external_code").reset_index(drop=True)


def _inputs(table: pd.DataFrame, field: str) -> str:
    """The identity of what an encoder reads from `table`: codes with their caption texts, or codes
    with their image files (path, size, modification time: an image replaced in place is new)."""
    from raydemand.data.pipelines.cache import digest

    if field == "caption":
        return digest(table[["external_code", "caption"]].to_numpy().tolist())
    stats = []
    for code, path in table[["external_code", "image_path"]].itertuples(index=False):
        st = Path(path).stat()
        stats.append((code, path, st.st_size, st.st_mtime_ns))
    return digest(stats)


def _embed(table: pd.DataFrame, emb_cfg: EmbeddingsConfig, cache_dir: Path) -> tuple[dict[str, np.ndarray], int]:
    """({code: vector}, dim) of every row of `table` (rows with a non-empty `emb_cfg.field`).

    Each (encoder, image reading, inputs) gets its own folder, named by the digest of those settings,
    so a changed encoder or caption recomputes, the same ones reuse, and trials that share a cache
    folder never write into one another's vectors.
    """
    from raydemand.data.pipelines.cache import digest, is_current
    from raydemand.data.pipelines.embeddings import cache_settings, load_embeddings, run
    from raydemand.io import write_table

    settings = cache_settings(emb_cfg, _inputs(table, emb_cfg.field))
    dim = settings["encoder"]["dim"]
    if table.empty:
        return {}, dim
    folder = cache_dir / f"{emb_cfg.field}_emb" / digest(settings)
    if not is_current(folder, settings):
        # The pipeline reads products from a file: a private one, as trials may share `cache_dir`.
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            source = write_table(table.assign(release_date=table["release_date"].dt.strftime("%Y-%m-%d")),
                                 Path(tmp) / "products.parquet")
            run(source, folder, emb_cfg, overwrite=True, cache_key=settings)
    keys, vectors = load_embeddings(folder)
    return dict(zip(keys.astype(str), vectors)), dim


def decode_images(table: pd.DataFrame, size: int, cache_dir: Path) -> dict[str, np.ndarray]:
    """{code: float16 (3, size, size)} images of `table`'s products (rows with an `image_path`), decoded,
    resized and normalised by the Ray Data images stage; kept in `cache_dir` like the embeddings, in a
    folder named by the digest of the image settings and the files read."""
    import pyarrow.parquet as pq

    from raydemand.data.pipelines.cache import digest, is_current, mark_current
    from raydemand.data.pipelines.images import ImagesConfig, run
    from raydemand.data.pipelines.stage_io import parquet_files
    from raydemand.io import write_table

    table = table[table["image_path"] != ""]
    if table.empty:
        return {}
    images_cfg = ImagesConfig(size=size)
    settings = {"images": images_cfg.model_dump(mode="json", exclude={"batch_size"}),
                "inputs": _inputs(table, "image")}
    folder = cache_dir / "images" / digest(settings)
    if not is_current(folder, settings):
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            source = write_table(table.assign(release_date=table["release_date"].dt.strftime("%Y-%m-%d")),
                                 Path(tmp) / "products.parquet")
            run(source, folder, images_cfg, overwrite=True)
        mark_current(folder, settings)
    out = {}
    for f in parquet_files(folder):
        part = pq.read_table(f, columns=["external_code", "image"]).to_pandas()
        images = np.stack(part["image"].to_numpy()).astype(np.float16)  # (n, 3, size, size)
        out.update(zip(part["external_code"].astype(str), images))
    return out


def embed_products(df: pd.DataFrame, cfg: ForecastConfig, cache_dir: str | Path) -> dict:
    """Captions and frozen embeddings of every product of `df`; vectors are cached in `cache_dir`,
    keyed by the encoder, its arguments, the image size and the captions or image files encoded.

    Returns {'caption': {code: text}, 'caption_vec': {code: vec}, 'image_vec': {code: vec},
    'caption_dim', 'image_dim'}, and for a fine-tuned image trunk (`model.image_encoder` not
    'cached') 'pixels': {code: float16 (3, H, W) image}; products without a caption or an image have
    no vector (no pixels).
    """
    from raydemand.data.pipelines.embeddings import EmbeddingsConfig
    from raydemand.data.pipelines.images import ImagesConfig
    from raydemand.forecast.captions import caption_products

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    products = _products(df)
    products["caption"] = caption_products(products, cfg.captions).to_numpy()
    if "image_path" not in products:
        products["image_path"] = ""
    table = products[["external_code", "release_date", "caption", "image_path"]].copy()

    text_cfg = EmbeddingsConfig(encoder=cfg.data.text_encoder, encoder_args={"pooling": cfg.data.text_pooling},
                                field="caption", batch_size=cfg.data.embed_batch_size)
    caption_vec, caption_dim = _embed(table[table["caption"].str.strip() != ""], text_cfg, cache_dir)
    image_cfg = EmbeddingsConfig(encoder=cfg.data.image_encoder, encoder_args=cfg.data.image_encoder_args,
                                 field="image", images=ImagesConfig(size=cfg.data.image_size),
                                 batch_size=cfg.data.embed_batch_size)
    image_vec, image_dim = _embed(table[table["image_path"] != ""], image_cfg, cache_dir)
    embedded = {"caption": dict(zip(table["external_code"], table["caption"])), "caption_vec": caption_vec,
                "image_vec": image_vec, "caption_dim": caption_dim, "image_dim": image_dim}
    if cfg.model.image_encoder != "cached":  # a fine-tuned trunk reads the images themselves
        embedded["pixels"] = decode_images(table, cfg.data.image_size, cache_dir)
    return embedded


def prepare_rows(df: pd.DataFrame, embedded: dict, attrs: list[str], scale: float | None,
                 upv: float = 1.0, trends: TrendSeries | None = None, trend_attributes: list[str] = ()) -> Rows:
    """Rows of `df` with their vectors; targets normalised as units / `scale` (None: no targets);
    with `trends`, each row's windows of the series its `trend_attributes` values name."""
    codes = df["external_code"].astype(str).to_numpy()

    def vectors(table: dict, dim: int):
        out = np.zeros((len(codes), dim), np.float32)
        has = np.array([c in table for c in codes])
        if has.any():
            out[has] = np.stack([table[c] for c in codes[has]])
        return out, has

    caption, has_caption = vectors(embedded["caption_vec"], embedded["caption_dim"])
    image, has_image = vectors(embedded["image_vec"], embedded["image_dim"])
    keys = df[["external_code", "release_date"] + (["retail"] if "retail" in df else [])].reset_index(drop=True)
    target = None
    if scale is not None and all(c in df for c in TARGET_COLUMNS):
        target = (df[TARGET_COLUMNS].to_numpy(np.float64) * upv / scale).astype(np.float32)
    group = pd.factorize(codes)[0].astype(np.int64)
    windows = row_trends(df, trends, list(trend_attributes)) if trends is not None else (None, None)
    rows = Rows(keys, Side.build(df.reset_index(drop=True), attrs, caption, image), caption, has_caption, image,
                has_image, group, target, None, *windows)
    if "pixels" in embedded:
        rows.pixels, rows.pixel_index, rows.has_image = product_pixels(codes, embedded["pixels"])
    return rows


def product_pixels(codes: np.ndarray, pixels: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (P + 1, 3, H, W) float16 with entry 0 all zeros, per row the index of its product's
    image (N,) int64, 0 = none, has_image (N,) bool): each product's image stored once."""
    unique, inverse = np.unique(codes, return_inverse=True)
    known = [c for c in unique if c in pixels]
    shape = next(iter(pixels.values())).shape if pixels else (3, 1, 1)
    table = np.zeros((len(known) + 1, *shape), np.float16)
    if known:
        table[1:] = np.stack([pixels[c] for c in known])
    position = {c: i + 1 for i, c in enumerate(known)}
    index = np.array([position.get(c, 0) for c in unique], np.int64)[inverse]
    return table, index, index > 0


def split_by_release(df: pd.DataFrame, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of (earlier, later) products: the latest `share` of products by release date."""
    first = df.groupby("external_code", sort=False)["release_date"].min().sort_values(kind="stable")
    n_late = max(1, int(round(share * len(first))))
    if n_late >= len(first):
        raise InputError(f"cannot carve {share:.0%} of {len(first)} products off for validation: too few products")
    late = set(first.index[-n_late:])
    is_late = df["external_code"].isin(late).to_numpy()
    return np.flatnonzero(~is_late), np.flatnonzero(is_late)


def neighbours_of(rows: Rows, pool: Rows, cfg: RetrievalConfig, weights: tuple[float, float, float] | None = None
                  ) -> tuple[Neighbours, np.ndarray, np.ndarray]:
    """(neighbours, completed curves (N, K, H), observed (N, K, H) bool) of `rows` in `pool`; only
    the weeks of a pool row observed before a row's release are read (see `raydemand.forecast.retrieval`)."""
    if pool.target is None or pool.profile is None:
        raise ValueError("a retrieval pool needs its rows' sales and a launch profile "
                         "(retrieval.launch_profile of the training curves)")
    nb = retrieve(rows.side, pool.side, cfg, weights=weights)
    curves, observed = neighbour_curves(nb, pool.target, pool.profile)
    return nb, curves, observed


def model_inputs(rows: Rows, pool: Rows, cfg: RetrievalConfig, with_index: bool = False) -> dict[str, np.ndarray]:
    """Arrays a batch of the model reads (see `raydemand.forecast.model`), plus `target` when known
    and, `with_index`, the neighbours' pool rows (`neighbour_index` (N, K), -1 for none). For a trunk
    run `pixels` (P + 1, 3, H, W) replaces `image`: one image per product, not per row, picked for a
    batch through `pixel_index` (see `train.to_tensors`); every other array has one entry per row."""
    nb, curves, observed = neighbours_of(rows, pool, cfg)
    out = {"image": rows.image, "has_image": rows.has_image, "caption": rows.caption,
           "has_caption": rows.has_caption, "neighbours": curves, "neighbour_observed": observed,
           "neighbour_weight": nb.weight, "group": rows.group}
    if rows.trends is not None:
        out["trends"], out["trend_observed"] = rows.trends, rows.trend_observed
    if rows.pixels is not None:  # a trunk run: `image` is gathered per batch from the product images
        del out["image"]
        out.update(pixels=rows.pixels, pixel_index=rows.pixel_index)
    if rows.target is not None:
        out["target"] = rows.target
    if with_index:
        out["neighbour_index"] = nb.index
    return out
