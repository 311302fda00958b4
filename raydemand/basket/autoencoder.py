"""Product autoencoder: a 64-d vector per catalogue product, learned from co-purchase.

Each product is described by P(c | p) for the `context_products` most popular products c (the
share of the orders holding p that also hold c) and, where the orders table carries product
attribute columns (`AutoencoderConfig.attributes`), their one-hot values. A denoising
autoencoder compresses that row to `dim` numbers; the encoder's output is the product's vector.
It is trained with Ray Train and written as Parquet (product_id, vector) for the predictors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from raydemand.basket.config import AutoencoderConfig
from raydemand.basket.data import Vocab
from raydemand.io import atomic_path
from raydemand.training import TrainTask, prepare_model, run_loop, shard_batches, unwrap, validation_shard


def product_profiles(lines: pd.DataFrame, vocab: Vocab, cfg: AutoencoderConfig) -> np.ndarray:
    """(P, C + A) float32: P(context product c in the order | product p in the order), c != p, then
    the one-hot attribute values (A columns; a product's first value in the table)."""
    from scipy import sparse

    from raydemand.errors import InputError

    if missing := [a for a in cfg.attributes if a not in lines.columns]:
        raise InputError(f"autoencoder.attributes: the orders table has no column {missing[0]!r}")

    idx = vocab.index(lines["product_id"].to_numpy())
    keep = idx >= 0
    orders = pd.factorize(lines["order_id"].to_numpy()[keep])[0]
    x = sparse.csr_matrix((np.ones(keep.sum(), np.float32), (orders, idx[keep])),
                          shape=(orders.max() + 1 if len(orders) else 0, len(vocab)))  # (orders, P)
    c = min(cfg.context_products, len(vocab))  # the vocabulary is ordered by popularity
    co = np.asarray((x.T @ x[:, :c]).todense(), dtype=np.float32)  # (P, C) co-occurrence counts
    own = np.asarray(x.sum(0)).ravel().astype(np.float32)  # (P,) orders holding p
    co[np.arange(c), np.arange(c)] = 0.0  # a product always co-occurs with itself
    parts = [co / np.maximum(own, 1.0)[:, None]]
    if cfg.attributes:
        first = lines.loc[keep, ["product_id", *cfg.attributes]].drop_duplicates("product_id")
        onehot = pd.get_dummies(first.set_index("product_id")[cfg.attributes].astype(str), dtype=np.float32)
        parts.append(onehot.reindex(pd.Index(vocab.products)).fillna(0.0).to_numpy(np.float32))
    return np.concatenate(parts, axis=1)


class ProductAutoencoder(nn.Module):
    def __init__(self, n_inputs: int, cfg: AutoencoderConfig):
        super().__init__()
        self.encoder = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(n_inputs, cfg.hidden), nn.ReLU(),
                                     nn.Linear(cfg.hidden, cfg.dim))
        self.decoder = nn.Sequential(nn.Linear(cfg.dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, n_inputs))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # (B, dim)
        return z, self.decoder(z)  # reconstruction logits (B, n_inputs)


class AutoencoderTask(TrainTask):
    """The autoencoder in the training skeleton: one report per `report_every` passes over this rank's
    padded shard of the products; early stopping on the reconstruction loss of all products, each
    rank scoring its share of them."""

    name, metric, patience = "autoencoder", "recon_loss", 3

    def __init__(self, config: dict):
        self.cfg = AutoencoderConfig.model_validate(config["cfg"])
        self.x = torch.as_tensor(config["profiles"])  # (P, C)
        self.seed = config["seed"]
        self.epochs = -(-self.cfg.epochs // self.cfg.report_every)

    def setup(self, ctx):
        self.model = prepare_model(ProductAutoencoder(self.x.shape[1], self.cfg))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        return {"model": self.model}, {"opt": self.opt}

    def batches(self, report: int, ctx) -> list[np.ndarray]:
        every = self.cfg.report_every
        passes = range(report * every, min((report + 1) * every, self.cfg.epochs))
        return [idx for p in passes
                for idx in shard_batches(len(self.x), self.cfg.batch_size, self.seed, p, ctx.rank, ctx.world_size)]

    def train_step(self, idx: np.ndarray, report: int, ctx) -> tuple[dict[str, float], float]:
        xb = self.x[idx].to(ctx.device)
        _, recon = self.model(xb)
        loss = nn.functional.binary_cross_entropy_with_logits(recon, xb)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"train_loss": float(loss.detach())}, len(idx)

    def evaluate(self, report: int, ctx) -> tuple[dict[str, float], float]:
        part = validation_shard(len(self.x), ctx)
        model = unwrap(self.model).eval()
        with torch.no_grad():
            xb = self.x[part].to(ctx.device)
            loss = nn.functional.binary_cross_entropy_with_logits(model(xb)[1], xb, reduction="none")  # (n, C)
        return {"recon_loss": float(loss.mean(1).sum())}, len(part)


def _loop(config: dict) -> None:
    run_loop(AutoencoderTask(config))


def train_autoencoder(lines: pd.DataFrame, vocab: Vocab, cfg: AutoencoderConfig, run_dir: Path, seed: int,
                      train_cfg) -> tuple[np.ndarray, dict]:
    """Train through Ray Train; returns the (P, dim) vectors in vocabulary order and the fit summary.

    The loss is reconstruction of all products' profiles: the autoencoder sees only training users'
    orders, so there is nothing to hold out from it.
    """
    from raydemand.training import fit, load_state

    profiles = product_profiles(lines, vocab, cfg)
    result = fit(_loop, {"cfg": cfg.model_dump(), "profiles": profiles, "seed": seed}, run_dir / "autoencoder",
                 train_cfg, metric="recon_loss", mode="min")
    model = ProductAutoencoder(profiles.shape[1], cfg)
    model.load_state_dict(load_state(result.best_checkpoint_dir)["modules"]["model"])
    model.eval()
    with torch.no_grad():
        vectors = model.encoder(torch.as_tensor(profiles)).numpy()  # (P, dim)
    return vectors, {"epochs": len(result.history), "best": result.best_metrics}


def write_vectors(path: Path, vocab: Vocab, vectors: np.ndarray) -> Path:
    """The embedding-vector file: Parquet with product_id and vector (list of float32)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"product_id": pa.array(vocab.products.tolist()),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1).astype(np.float32)),
                                                                  vectors.shape[1])})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_vectors(path: str | Path, vocab: Vocab, dim: int) -> tuple[np.ndarray, int]:
    """(P, dim) vectors in vocabulary order from an embedding file; products it lacks get small random
    vectors. Returns the vectors and how many catalogue products the file had."""
    from raydemand.errors import InputError

    df = pd.read_parquet(path)
    if not {"product_id", "vector"} <= set(df.columns):
        raise InputError(f"{path}: an embedding file needs columns product_id and vector, has {list(df.columns)}")
    vectors = np.stack(df["vector"].to_numpy()).astype(np.float32) if len(df) else np.zeros((0, dim), np.float32)
    if vectors.shape[1] != dim:
        raise InputError(f"{path}, column 'vector': vectors have {vectors.shape[1]} numbers, the model needs {dim}")
    pos = vocab.index(df["product_id"].to_numpy())
    out = np.random.default_rng(0).normal(0, 0.1, (len(vocab), dim)).astype(np.float32)
    out[pos[pos >= 0]] = vectors[pos >= 0]
    return out, int((pos >= 0).sum())
