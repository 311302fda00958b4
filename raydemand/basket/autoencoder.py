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


def _loop(config: dict) -> None:
    from raydemand.training import Checkpointer, EarlyStopping, all_reduce_mean, prepare_model, worker

    cfg = AutoencoderConfig.model_validate(config["cfg"])
    torch.manual_seed(config["seed"])
    ctx = worker()
    x = torch.as_tensor(config["profiles"])  # (P, C)
    model = prepare_model(ProductAutoencoder(x.shape[1], cfg))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt = Checkpointer({"model": model}, {"opt": opt})
    state = ckpt.restore()
    stopper = EarlyStopping(3, "min")
    if state:
        stopper.load_state_dict(state.extra["early_stop"])
    loss_fn = nn.BCEWithLogitsLoss()
    own = torch.arange(ctx.rank, len(x), ctx.world_size)  # this worker's products
    rounds = -(-cfg.epochs // cfg.report_every)  # one report per `report_every` epochs
    for report in range(state.epoch if state else 0, rounds):
        model.train()
        total, seen = 0.0, 0
        for _ in range(min(cfg.report_every, cfg.epochs - report * cfg.report_every)):
            order = own[torch.randperm(len(own))]
            for i in range(0, len(order), cfg.batch_size):
                xb = x[order[i:i + cfg.batch_size]].to(ctx.device)
                _, recon = model(xb)
                loss = loss_fn(recon, xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, seen = total + float(loss) * len(xb), seen + len(xb)
        model.eval()
        with torch.no_grad():
            val = float(loss_fn(model(x.to(ctx.device))[1], x.to(ctx.device)))
        metrics = all_reduce_mean({"train_loss": total / max(seen, 1), "recon_loss": val})
        stop = stopper.step(metrics["recon_loss"])
        ckpt.report(report, metrics, extra={"early_stop": stopper.state_dict()})
        if stop:
            break


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
