"""Frozen-encoder embedding cache: run an encoder once over the catalogue, keep the vectors in Parquet.

Images come through the images pipeline (tasks decode, resize, normalise); texts come from a
`caption` or `text` column. Either way an actor pool holds the encoder, so the model is loaded
once per actor and not once per batch; with GPUs in the cluster every actor gets one. The output
folder holds Parquet (key, `embedding` as a fixed-size float32 list) and `_encoder.json`, the
encoder's name, kind, dim and arguments, so that training knows what produced the vectors. A folder
kept as a cache across runs also holds `_cache_key.json` (see `cache_settings` and
`raydemand.data.pipelines.cache`), so that vectors of another encoder or other inputs are never reused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from raydemand.config import Config
from raydemand.data.pipelines.cache import file_identity, key_record
from raydemand.data.pipelines.images import ImagesConfig, images_dataset
from raydemand.data.pipelines.stage_io import (
    FLOAT_PARQUET_ARGS,
    parquet_files,
    parquet_rows,
    table_blocks,
    write_dataset,
    write_metadata,
)
from raydemand.encoders import create_encoder
from raydemand.errors import InputError
from raydemand.io import atomic_dir


class EmbeddingsConfig(Config):
    encoder: str = "resnet18"  # a registered encoder (resnet18, resnet50, minilm) or a transformers model name/folder
    # Passed to the encoder, e.g. {weights: IMAGENET1K_V1}, {seed: 1}, {pooling: mean}, {max_length: 64}.
    encoder_args: dict[str, Any] = Field(default_factory=dict)
    field: Literal["image", "caption", "text"] = "image"  # what is encoded: the product image or a text column
    images: ImagesConfig = Field(default_factory=ImagesConfig)  # how images are read for an image encoder (3 channels)
    batch_size: int = Field(32, ge=1)  # rows per encoder call; on a GPU raise it as far as memory allows
    concurrency: int = Field(1, ge=1)  # encoder actors; each holds one GPU when the cluster has GPUs


class EncodeBatch:
    """Ray Data actor: loads the encoder once, then turns batches of rows into (key, embedding)."""

    def __init__(self, encoder: str, encoder_args: dict[str, Any], key: str, column: str):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"  # Ray exposes only the actor's own GPU
        self.encoder = create_encoder(encoder, device=device, **encoder_args)
        self.key, self.column = key, column

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        vectors = self.encoder.encode(batch[self.column]).astype(np.float32)  # (N, dim)
        flat = pa.array(vectors.reshape(-1))
        return pa.table({self.key: batch[self.key],
                         "embedding": pa.FixedSizeListArray.from_arrays(flat, self.encoder.dim)})


def _texts(source: str | Path, field: str, split: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per product with a non-empty `field`; products without one are counted."""
    from raydemand.data.sources import load_products

    df = load_products(source, split=split, require_targets=False, check_images=False)
    if field not in df.columns:
        raise InputError(f"{source}: the product table has no {field!r} column")
    products = df.drop_duplicates("external_code")
    texts = products.loc[products[field].str.strip() != "", ["external_code", field]].reset_index(drop=True)
    return texts, {"key": "external_code", f"skipped_no_{field}": len(products) - len(texts), "listed": len(texts)}


def embeddings_dataset(source: str | Path, cfg: EmbeddingsConfig, split: str | None = None):
    """The lazy Ray Dataset of (key, embedding), the encoder's description and the listing info.

    The encoder is built once here as well, so that a wrong name, missing weights or a field
    that does not suit the encoder fail before any actor starts.
    """
    import ray

    from raydemand.ray_utils import gpu_available

    described = create_encoder(cfg.encoder, **cfg.encoder_args).describe()
    wanted = "image" if cfg.field == "image" else "text"
    if described["kind"] != wanted:
        raise InputError(f"encoder {cfg.encoder!r} encodes {described['kind']}s; field {cfg.field!r} needs a "
                         f"{wanted} encoder")
    if cfg.field == "image":
        if cfg.images.channels != 3:
            raise InputError(f"image encoders take 3 channels; got images.channels={cfg.images.channels}")
        ds, info = images_dataset(source, cfg.images, split=split)
        column = "image"
    else:
        table, info = _texts(source, cfg.field, split)
        ds, column = ray.data.from_pandas(table_blocks(table, cfg.batch_size)), cfg.field
    if info["listed"] == 0:
        raise InputError(f"{source}: no product has {'an image' if column == 'image' else 'a ' + column}")
    gpus = gpu_available()
    ds = ds.map_batches(
        EncodeBatch,
        fn_constructor_kwargs={"encoder": cfg.encoder, "encoder_args": cfg.encoder_args,
                               "key": info["key"], "column": column},
        batch_size=cfg.batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.concurrency),
        num_gpus=1 if gpus else None,
    )
    return ds, described, info


def cache_settings(cfg: EmbeddingsConfig, inputs: Any) -> dict[str, Any]:
    """What fixes the vectors of an embeddings folder: the encoder as built (name, dim, weights or
    seed, pooling, ...; and the files of a local model folder, which may be retrained in place), the
    field, how images are read, and `inputs`, the identity of what is encoded. Batch size and
    concurrency change only speed, so they are left out."""
    described = create_encoder(cfg.encoder, **cfg.encoder_args).describe()
    local = {k: file_identity(v) for k, v in described.items() if isinstance(v, str) and Path(v).is_dir()}
    settings = {"encoder": described, "model_files": local, "field": cfg.field, "inputs": inputs}
    if cfg.field == "image":
        settings["images"] = cfg.images.model_dump(mode="json", exclude={"batch_size"})
    return settings


def run(source: str | Path, out: str | Path, cfg: EmbeddingsConfig | None = None, *, split: str | None = None,
        overwrite: bool = False, cache_key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Encode every product of `source` once and write the vectors to `out` (written atomically).

    `cache_key`: the `cache_settings` the vectors answer to, written into the folder with it, so
    that a reader never finds new vectors under an old key or the reverse."""
    cfg = cfg or EmbeddingsConfig()
    start = time.perf_counter()
    ds, described, info = embeddings_dataset(source, cfg, split=split)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_dataset(ds, tmp, **FLOAT_PARQUET_ARGS)
        rows = parquet_rows(tmp)
        skipped = {k: v for k, v in info.items() if k.startswith("skipped_")}
        if cfg.field == "image":
            skipped["skipped_unreadable"] = info["listed"] - rows
        summary = {"source": str(source), "out": str(out), "rows": rows, "key": info["key"], "field": cfg.field,
                   "encoder": described["name"], "dim": described["dim"], **skipped,
                   "seconds": round(time.perf_counter() - start, 2)}
        encoder = {**described, "field": cfg.field,
                   **({"images": cfg.images.model_dump(mode="json")} if cfg.field == "image" else {})}
        keys = {"cache_key": key_record(cache_key)} if cache_key is not None else {}
        write_metadata(tmp, cfg, summary, encoder=encoder, **keys)
    return summary


def load_embeddings(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(keys (N,), float32 vectors (N, dim)) from an embeddings folder; keys[i] names vectors[i]."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    info_path = folder / "_encoder.json"
    if not info_path.is_file():
        raise InputError(f"{folder}: not an embeddings folder (no _encoder.json)")
    dim = json.loads(info_path.read_text())["dim"]
    files = parquet_files(folder)
    if not files:
        return np.array([], dtype=object), np.zeros((0, dim), np.float32)
    table = pa.concat_tables(pq.read_table(f) for f in files)
    key = next(c for c in table.column_names if c != "embedding")
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return table.column(key).to_numpy(zero_copy_only=False), vectors.astype(np.float32).reshape(-1, dim)
