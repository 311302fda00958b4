"""GAN training dynamics without Ray: N training steps of one GAN on the first images of a source,
printing the health numbers of `design train` every `--every` steps (a JSON line each).

It calls the same training step (`raydemand.design.train.gan_step`), validation split and metrics as
`raydemand design train`, but samples batches at random and evaluates more often than once per
epoch, so one can see when a GAN leaves its starting point or collapses without a 10-epoch run:

    python bench/design_dynamics.py --gan d2gan --limit 6000 --steps 800 --width 16 --val-max 500
    python bench/design_dynamics.py --gan pggan --images data/v2_10k --limit 10000 --steps 1400 --every 140 \
        --width 4 --set model.max_width=64 --val-max 500 --set lr=2e-4     # PGGAN at the seed's lr

Columns: step, d_loss, g_loss (last batch), d_separation (last batch), pixel FD to the held-out real
images (`val_fd` of design train), diversity (mean within-category spread relative to real), seconds.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", default="d2gan", choices=["dcgan", "pggan", "d2gan"])
    p.add_argument("--images", default="fashion-mnist", help="image source, as in design train")
    p.add_argument("--limit", type=int, default=6000, help="first N images")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--mode-seeking", type=float, default=None,
                   help="weight of the mode-seeking term (default: the GAN's; 0: off)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a design train setting, e.g. lr=2e-4 or model.max_width=64; repeatable")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--val-max", type=int, default=None, help="validation images at most (default: design train's)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import torch

    from raydemand.config import with_overrides
    from raydemand.design.config import GANTrainConfig, ImageSourceConfig
    from raydemand.design.images import load_images
    from raydemand.design.metrics import pixel_features
    from raydemand.design.models import create_gan
    from raydemand.design.train import gan_step, generator_health, learning_rate, split_validation

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    # design train's optimiser settings and validation split, and its model settings
    mode_seeking = [] if a.mode_seeking is None else [f"model.mode_seeking={a.mode_seeking}"]
    cfg = with_overrides(GANTrainConfig(), [f"model.gan={a.gan}", f"model.width={a.width}", *mode_seeking, *a.set])
    images = load_images(ImageSourceConfig(source=a.images, limit=a.limit))
    train, val = split_validation(images.labels, cfg.val_fraction, a.val_max or cfg.val_max, a.seed)
    x = torch.from_numpy(images.to_float(train))  # (N, C, H, W) in [-1, 1]
    y = torch.from_numpy(images.labels[train])
    val_labels = images.labels[val]
    val_features = pixel_features(images.to_float(val))
    gan = create_gan(a.gan, len(images.categories), images.channels, 64, **cfg.model.model_dump(exclude={"gan"}))
    betas, lr = (cfg.beta1, cfg.beta2), learning_rate(cfg, gan)
    opt_g = torch.optim.Adam(gan.G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(gan.D.parameters(), lr=lr, betas=betas)
    z_val = torch.randn(len(val_labels), gan.cfg.noise_dim, generator=torch.Generator().manual_seed(a.seed + 1))
    y_val = torch.as_tensor(val_labels)
    rng = np.random.default_rng(a.seed)
    print(json.dumps({"gan": a.gan, "data": images.description, "train": int(len(train)), "val": int(len(val)),
                      "width": a.width, "mode_seeking": gan.cfg.mode_seeking, "lr": lr, "set": a.set,
                      "seed": a.seed}), flush=True)
    start = time.perf_counter()
    for s in range(a.steps):
        gan.set_progress(s / a.steps)
        idx = rng.choice(len(x), min(a.batch_size, len(x)), replace=False)
        loss_d, loss_g, sep = gan_step(gan, gan.G, gan.D, opt_g, opt_d, x[idx], y[idx])
        if (s + 1) % a.every == 0 or s + 1 == a.steps:
            val_fd, div = generator_health(gan, z_val, y_val, val_features, val_labels)
            print(json.dumps({"step": s + 1, "d_loss": round(loss_d, 3), "g_loss": round(loss_g, 3),
                              "d_separation": round(sep, 3), "pixel_fd": round(val_fd, 1),
                              "diversity": round(float(np.mean(list(div.values()))), 3) if div else None,
                              "s": round(time.perf_counter() - start)}), flush=True)


if __name__ == "__main__":
    main()
