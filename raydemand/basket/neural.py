"""CNNGRU / AttentionGRU as basket methods: Ray Train `TorchTrainer` training on streamed windows.

Training windows (every order of every training user) come from the Ray Data windows stage as a
materialised Ray Dataset, sharded over the workers by Ray Train and shuffled in a streaming buffer;
each batch is encoded on the worker (`data.encode`). Every epoch ends with validation on the
validation users' last orders: loss, NDCG@K, recall@K and the best f1_micro over the thresholds.
Checkpoints are kept and training stops early by validation NDCG@K.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from raydemand.basket.base import BasketPredictor, TrainData, register_predictor
from raydemand.basket.config import BasketConfig
from raydemand.basket.data import Vocab, encode
from raydemand.basket.models import create_model
from raydemand.training import TrainTask, prepare_model, run_loop, unwrap

INPUTS = ("orders", "order_mask", "feats", "context")
SCORE_BATCH = 512
CHECKPOINT_METRIC = "val_ndcg"


def to_tensors(enc: dict[str, np.ndarray], device) -> list[torch.Tensor]:
    return [torch.as_tensor(enc[k]).to(device) for k in INPUTS]


def predict_logits(model: nn.Module, enc: dict[str, np.ndarray], device=None) -> torch.Tensor:
    """(B, P) logits on the CPU, scored in slices of SCORE_BATCH windows."""
    device = device or torch.device("cpu")
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(enc["orders"]), SCORE_BATCH):
            part = {k: enc[k][i:i + SCORE_BATCH] for k in INPUTS}
            out.append(model(*to_tensors(part, device)).float().cpu())
    return torch.cat(out) if out else torch.zeros((0, enc["feats"].shape[1]))


def predict_proba(model: nn.Module, enc: dict[str, np.ndarray], device=None) -> np.ndarray:
    return torch.sigmoid(predict_logits(model, enc, device)).numpy()


def bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    weight = torch.tensor(pos_weight, device=logits.device)
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=weight)


def validate(model: nn.Module, enc: dict[str, np.ndarray], cfg: BasketConfig, device) -> dict[str, float]:
    from raydemand.basket.metrics import ranking_metrics, threshold_metrics

    logits = predict_logits(model, enc, device)
    probs = torch.sigmoid(logits).numpy()
    loss = float(bce(logits, torch.as_tensor(enc["target"]), cfg.pos_weight))
    rank = ranking_metrics(probs, enc["target"], cfg.k, enc["missed"])
    f1 = max(threshold_metrics(probs, enc["target"], t, enc["missed"])["f1_micro"] for t in cfg.thresholds)
    return {"val_loss": loss, CHECKPOINT_METRIC: rank[f"ndcg@{cfg.k}"], "val_recall": rank[f"recall@{cfg.k}"],
            "val_precision": rank[f"precision@{cfg.k}"], "val_best_f1_micro": f1}


class BasketTask(TrainTask):
    """CNNGRU / AttentionGRU in the training skeleton: Adam steps on this worker's Ray Data shard of the
    training windows (Ray Train splits the dataset equally), early stopping on validation NDCG@K.
    Every worker scores all validation windows: the best F1 over thresholds is no mean over users."""

    metric, mode = CHECKPOINT_METRIC, "max"

    def __init__(self, config: dict[str, Any]):
        self.cfg = BasketConfig.model_validate(config["cfg"])
        self.vocab = Vocab.from_state(config["vocab"])
        self.vectors, self.val_windows = config["vectors"], config["val_windows"]
        self.name, self.epochs, self.seed = self.cfg.model, self.cfg.epochs, self.cfg.seed
        self.patience, self.bf16 = self.cfg.patience, self.cfg.train.bf16

    def setup(self, ctx):
        import ray.train

        cfg = self.cfg
        self.model = prepare_model(create_model(cfg.model, len(self.vocab), cfg.net, self.vectors))
        self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        self.val = encode(self.val_windows, self.vocab, cfg.data, cfg.decay)
        self.shard = ray.train.get_dataset_shard("train")
        return {"model": self.model}, {"opt": self.opt}

    def batches(self, epoch: int, ctx):
        return self.shard.iter_batches(batch_size=self.cfg.batch_size, batch_format="pyarrow",
                                       local_shuffle_buffer_size=self.cfg.shuffle_buffer,
                                       local_shuffle_seed=self.seed * 1000 + epoch * 10 + ctx.rank)

    def train_step(self, batch, epoch: int, ctx) -> tuple[dict[str, float], float]:
        enc = encode(batch, self.vocab, self.cfg.data, self.cfg.decay)
        with ctx.autocast():
            logits = self.model(*to_tensors(enc, ctx.device))  # (B, P)
        loss = bce(logits, torch.as_tensor(enc["target"]).to(ctx.device), self.cfg.pos_weight)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"train_loss": float(loss.detach())}, len(enc["target"])

    def evaluate(self, epoch: int, ctx) -> tuple[dict[str, float], float]:
        return validate(unwrap(self.model), self.val, self.cfg, ctx.device), 1.0

    def finish(self, metrics: dict[str, float], seconds: float, seen: float) -> dict[str, float]:
        return metrics | {"train_windows": seen, "epoch_seconds": seconds, "windows_per_s": seen / max(seconds, 1e-9)}


def _train_loop(config: dict[str, Any]) -> None:
    run_loop(BasketTask(config))


class NeuralPredictor(BasketPredictor):
    def __init__(self, cfg: BasketConfig, vocab: Vocab):
        super().__init__(cfg, vocab)
        torch.manual_seed(cfg.seed)
        self.model = create_model(cfg.model, len(vocab), cfg.net)

    def fit(self, data: TrainData, run_dir: Path, callbacks: list | None = None) -> dict[str, Any]:
        from raydemand.training import fit, load_state

        summary: dict[str, Any] = {}
        vectors = None
        if self.cfg.net.embeddings == "autoencoder":
            from raydemand.basket.autoencoder import train_autoencoder, write_vectors

            if self.cfg.net.embed_dim != self.cfg.autoencoder.dim:
                from raydemand.config import ConfigError

                raise ConfigError(f"net.embed_dim ({self.cfg.net.embed_dim}) must equal autoencoder.dim "
                                  f"({self.cfg.autoencoder.dim}) to load the autoencoder's vectors")
            vectors, summary["autoencoder"] = train_autoencoder(data.lines, self.vocab, self.cfg.autoencoder,
                                                                run_dir, self.cfg.seed, self.cfg.train)
            write_vectors(run_dir / "embeddings.parquet", self.vocab, vectors)
        windows = data.train_windows(self.cfg)
        if self.cfg.window_fraction < 1:
            windows = windows.random_sample(self.cfg.window_fraction, seed=self.cfg.seed).materialize()
        loop_config = {"cfg": self.cfg.model_dump(mode="json"), "vocab": self.vocab.state(), "vectors": vectors,
                       "val_windows": data.val_windows}
        result = fit(_train_loop, loop_config, run_dir, self.cfg.train, metric=CHECKPOINT_METRIC, mode="max",
                     datasets={"train": windows}, callbacks=callbacks)
        self.model.load_state_dict(load_state(result.best_checkpoint_dir)["modules"]["model"])
        best = result.best_metrics
        summary.update({"history": result.history, "chosen_epoch": int(best["epoch"]), "best": best})
        return summary

    def score(self, enc):
        return predict_proba(self.model, enc)

    def state(self):
        return {"weights": self.model.state_dict()}

    def load_state(self, state):
        self.model.load_state_dict(state["weights"])


@register_predictor("cnngru")
class CNNGRUPredictor(NeuralPredictor):
    pass


@register_predictor("attngru")
class AttentionGRUPredictor(NeuralPredictor):
    pass
