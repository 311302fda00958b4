"""The preference scorer: a torchvision ResNet (ResNet-50 as in the seed; resnet18 for CPU) trained
with Ray Train to tell product categories apart on images of the best-selling products (top N by
total sales where the source has sales; every image otherwise), split train/val/test 5:3:2 by
category. An image's preference for category c is the scorer's softmax probability of c, in %.

The run directory holds `config.yaml`, `model.pt` (weights + categories), `metrics.json` (history,
chosen epoch, held-out test accuracy and preference, real-vs-real feature reference) and
`reference.npz` (penultimate features of the real validation and test images, what `score`
compares generated images with).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from raydemand import runs
from raydemand.design.config import ScorerConfig
from raydemand.design.images import ImageSet, load_images
from raydemand.errors import InputError
from raydemand.io import atomic_path
from raydemand.training import TrainTask, prepare_model, run_loop, shard_batches, unwrap, validation_shard

REFERENCE_FILE = "reference.npz"
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet statistics: pretrained weights expect them
STD = np.array([0.229, 0.224, 0.225], np.float32)


def build_model(arch: str, n_classes: int, weights: str | None = None, seed: int = 0):
    """A torchvision ResNet whose head predicts `n_classes`; `weights` load from the local cache only."""
    import torch

    from raydemand.encoders import create_encoder

    encoder = create_encoder(arch, weights=weights, seed=seed)  # ResNet with fc = Identity
    model = encoder.model
    model.fc = torch.nn.Linear(encoder.dim, n_classes)
    return model


def features(model, x):
    """A torchvision ResNet's pooled penultimate features (N, D): its forward without `fc`."""
    m = model
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return m.avgpool(x).flatten(1)


def to_input(images: np.ndarray, size: int):
    """uint8 (N, H, W) or (N, H, W, C) -> normalised float32 tensor (N, 3, size, size)."""
    import torch
    import torch.nn.functional as F

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise InputError(f"images must be uint8 (N, H, W) or (N, H, W, 3), got shape {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() / 255.0  # (N, C, H, W)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)  # greyscale replicated, as the data layer does for ResNets
    if t.shape[-1] != size or t.shape[-2] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return (t - torch.from_numpy(MEAN)[:, None, None]) / torch.from_numpy(STD)[:, None, None]


def split_532(labels: np.ndarray, shares: tuple[float, float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Train/val/test indices, stratified by label (each label split by the shares, rounding so that
    a label with three or more images has at least one in each part)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = len(idx)
        n_val = max(1, int(round(shares[1] * n))) if n >= 3 else 0
        n_test = max(1, int(round(shares[2] * n))) if n >= 3 else 0
        n_train = n - n_val - n_test
        for part, chunk in zip(parts, np.split(idx, [n_train, n_train + n_val])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def _augment(x, generator):
    """Random horizontal flips and shifts of up to 4 pixels (reflection padding), per image."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None].to(x.device), x.flip(-1), x)
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dy, dx = torch.randint(0, 9, (2,), generator=generator).tolist()  # one shift per batch keeps it cheap
    return padded[:, :, dy:dy + h, dx:dx + w]


class ScorerTask(TrainTask):
    """The scorer in the training skeleton: AdamW steps on this rank's padded shard of the training
    images, early stopping on the validation loss over every rank's share of the validation images."""

    name = "scorer"

    def __init__(self, config: dict[str, Any]):
        import ray

        self.cfg = ScorerConfig.model_validate(config["cfg"])
        self.data, self.n_classes = ray.get(config["data"]), config["n_classes"]
        self.epochs, self.seed, self.patience = self.cfg.epochs, self.cfg.seed, self.cfg.patience
        self.bf16 = self.cfg.train.bf16

    def setup(self, ctx):
        import torch

        cfg = self.cfg
        self.model = prepare_model(build_model(cfg.arch, self.n_classes, cfg.weights, cfg.seed))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.augment_rng = torch.Generator().manual_seed(cfg.seed)
        return {"model": self.model}, {"opt": self.opt}

    def batches(self, epoch: int, ctx) -> list[np.ndarray]:
        return shard_batches(len(self.data["train_labels"]), self.cfg.batch_size, self.seed, epoch, ctx.rank,
                             ctx.world_size)

    def train_step(self, idx: np.ndarray, epoch: int, ctx) -> tuple[dict[str, float], float]:
        import torch
        import torch.nn.functional as F

        x = to_input(self.data["train_images"][idx], self.cfg.images.size).to(ctx.device)
        if self.cfg.augment:
            x = _augment(x, self.augment_rng)
        y = torch.from_numpy(self.data["train_labels"][idx]).to(ctx.device)
        with ctx.autocast():
            loss = F.cross_entropy(self.model(x).float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"train_loss": float(loss.detach())}, len(idx)

    def evaluate(self, epoch: int, ctx) -> tuple[dict[str, float], float]:
        import torch
        import torch.nn.functional as F

        part = validation_shard(len(self.data["val_labels"]), ctx)
        model = unwrap(self.model).eval()  # not DDP: ranks score different numbers of batches
        loss, correct = 0.0, 0
        with torch.no_grad(), ctx.autocast():
            for s in range(0, len(part), 256):
                idx = part[s:s + 256]
                logits = model(to_input(self.data["val_images"][idx], self.cfg.images.size).to(ctx.device)).float()
                y = torch.from_numpy(self.data["val_labels"][idx]).to(ctx.device)
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
        return {"val_loss": loss, "val_accuracy": correct}, len(part)


def _loop(config: dict[str, Any]) -> None:
    run_loop(ScorerTask(config))


class ScorerRun:
    """A trained scorer loaded from a run directory; no Ray needed."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", *, finished: bool = True):
        state = runs.read_model(run_dir, "scorer", finished=finished).state
        self.categories: list[str] = list(state["categories"])
        self.arch, self.size, self.run_dir, self.device = state["arch"], int(state["size"]), Path(run_dir), device
        self.model = build_model(self.arch, len(self.categories))
        self.model.load_state_dict(state["state_dict"])
        self.model.eval().to(device)
        ref = Path(run_dir) / REFERENCE_FILE
        self.reference = dict(np.load(ref)) if ref.is_file() else None

    def predict(self, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (N, K) over the categories and penultimate features (N, D)."""
        import torch

        probs, feats = [], []
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                f = features(self.model, to_input(images[s:s + batch_size], self.size).to(self.device)).float()
                feats.append(f.cpu().numpy())
                probs.append(torch.softmax(self.model.fc(f), dim=1).cpu().numpy())
        return np.concatenate(probs), np.concatenate(feats)

    def labels_from(self, labels: np.ndarray, categories: list[str]) -> np.ndarray:
        """Map labels indexing `categories` (a samples file's) onto this scorer's categories."""
        unknown = sorted(set(categories[i] for i in np.unique(labels)) - set(self.categories))
        if unknown:
            raise InputError(f"categories {unknown} are unknown to this scorer (it knows: {', '.join(self.categories)})")
        lookup = np.array([self.categories.index(c) if c in self.categories else -1 for c in categories])
        return lookup[labels]


def load_scorer(run_dir: str | Path, device: str = "cpu") -> ScorerRun:
    return ScorerRun(run_dir, device)


def _reference(scorer: ScorerRun, images: ImageSet, val: np.ndarray, test: np.ndarray, k: int, seed: int) -> tuple[dict, dict]:
    """Reference features and the real-vs-real values (validation vs test real images, equal sizes)."""
    from raydemand.design.metrics import feature_metrics, preference

    val_probs, val_feats = scorer.predict(images.images[val])
    test_probs, test_feats = scorer.predict(images.images[test])
    n = min(len(val), len(test))
    rng = np.random.default_rng(seed)
    a, b = rng.choice(len(val), n, replace=False), rng.choice(len(test), n, replace=False)
    real_vs_real = feature_metrics(test_feats[b], val_feats[a], k) if n > k + 1 else {}
    test_pref = preference(test_probs, images.labels[test], images.categories)
    ref = {"val_features": val_feats.astype(np.float32), "val_labels": images.labels[val],
           "test_features": test_feats.astype(np.float32), "test_labels": images.labels[test]}
    return ref, {"real_vs_real": {**real_vs_real, "n": int(n)}, "test_real": test_pref,
                 "test_accuracy": float((test_probs.argmax(1) == images.labels[test]).mean())}


def train_scorer(cfg: ScorerConfig, out: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Train the preference scorer into run directory `out`; returns the metrics record."""
    import ray

    from raydemand.ray_utils import init_ray
    from raydemand.training import fit, load_state

    out = runs.start_run(out, cfg, overwrite=overwrite)
    images = load_images(cfg.images, top=cfg.top)
    train_idx, val_idx, test_idx = split_532(images.labels, cfg.split, cfg.seed)
    if len(val_idx) == 0 or len(test_idx) == 0:
        raise InputError(f"{cfg.images.source}: {len(images)} images are too few for a train/val/test split "
                         f"(each category needs at least 3)")
    init_ray()
    data = {"train_images": images.images[train_idx], "train_labels": images.labels[train_idx],
            "val_images": images.images[val_idx], "val_labels": images.labels[val_idx]}
    loop_config = {"cfg": cfg.model_dump(mode="json"), "n_classes": len(images.categories), "data": ray.put(data)}
    result = fit(_loop, loop_config, out, cfg.train, metric="val_loss", mode="min")
    state = load_state(result.best_checkpoint_dir)
    best = state["history"][-1]
    runs.write_model(out, "scorer", cfg, {"arch": cfg.arch, "size": cfg.images.size, "categories": images.categories,
                                          "state_dict": state["modules"]["model"], "epoch": int(best["epoch"])})
    scorer = ScorerRun(out, finished=False)
    ref, evaluation = _reference(scorer, images, val_idx, test_idx, cfg.nearest_k, cfg.seed)
    with atomic_path(out / REFERENCE_FILE) as tmp:
        np.savez_compressed(tmp, **ref)
    record = {"arch": cfg.arch, "seed": cfg.seed, "data": images.description, "categories": images.categories,
              "split": {"train": int(len(train_idx)), "val": int(len(val_idx)), "test": int(len(test_idx))},
              "chosen_epoch": int(best["epoch"]), "best": best, "history": result.history, **evaluation}
    runs.finish_run(out, record)
    return record
