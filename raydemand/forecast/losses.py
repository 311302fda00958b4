"""The training loss: weighted MAE + MSE + SMAPE plus lambda * image-text InfoNCE (seed 000)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raydemand.forecast.config import LossConfig


def smape(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean of 2|p - y| / (|p| + |y|) in [0, 2]; weeks where both are 0 count as 0."""
    denom = pred.abs() + target.abs()
    return (2 * (pred - target).abs() / denom.clamp(min=eps) * (denom > eps)).mean()


def info_nce(image: torch.Tensor, caption: torch.Tensor, group: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between image and caption embeddings (B, D). Rows of the same product
    (`group`, e.g. one product in several stores) are not used as each other's negatives."""
    if image.shape[0] < 2:
        return image.new_zeros(())
    image, caption = F.normalize(image, dim=-1), F.normalize(caption, dim=-1)
    logits = image @ caption.T / temperature  # (B, B)
    same = group[:, None] == group[None, :]
    eye = torch.eye(len(group), dtype=torch.bool, device=group.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(group), device=group.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class ForecastLoss:
    def __init__(self, cfg: LossConfig):
        self.cfg = cfg

    def __call__(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms and their weighted sum ('loss'); the contrastive term only over rows with both modalities."""
        pred, target = out["forecast"].float(), batch["target"]
        terms = {"mae": (pred - target).abs().mean(), "mse": ((pred - target) ** 2).mean(),
                 "smape": smape(pred, target)}
        loss = self.cfg.mae * terms["mae"] + self.cfg.mse * terms["mse"] + self.cfg.smape * terms["smape"]
        both = out["paired"]
        if self.cfg.contrastive > 0 and int(both.sum()) >= 2:
            terms["contrastive"] = info_nce(out["image_emb"][both].float(), out["caption_emb"][both].float(),
                                            batch["group"][both], self.cfg.temperature)
            loss = loss + self.cfg.contrastive * terms["contrastive"]
        terms["loss"] = loss
        return terms
