"""GAN training throughput: images/s per GAN at the seed's settings (64x64, batch 128, noise 100,
Adam at the GAN's default learning rate), on CPU and, where a GPU exists, on the GPU with bf16 autocast.

Each timed step is the real training step (`raydemand.design.train.gan_step`: D on a real batch,
D on a generated batch, G through D), on random images, after `--warmup` untimed steps; the best
of `--repeat` blocks of `--steps` steps is kept. PGGAN is timed at full resolution (its last stage,
the most expensive; earlier stages are cheaper). Ray start-up is not included. The machine may be
shared: every block also reports the CPU time other processes used meanwhile (`foreign_cpu_s`),
and the ratio of each GAN to DCGAN, measured in the same run, is the number to compare.
Epoch time for the seed's full budget (60,000 Fashion-MNIST images) is extrapolated from img/s.

    python bench/design_train.py [--widths default|cpu|cpu16] [--steps 3] [--repeat 2] [--device cpu|cuda|all]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_pipeline import CpuWatch  # noqa: E402  (same folder)

from raydemand.design.models import create_gan, list_gans  # noqa: E402
from raydemand.design.train import gan_step  # noqa: E402

FULL_EPOCH = 60_000  # Fashion-MNIST training images
# Widths: the defaults (DCGAN's 64, PGGAN 16 at 64 px), and reduced ones for CPU runs.
WIDTHS = {"default": {"dcgan": {}, "d2gan": {}, "pggan": {}},
          "cpu": {"dcgan": {"width": 8}, "d2gan": {"width": 8}, "pggan": {"width": 4, "max_width": 32}},
          # the 2026-11-29 CPU acceptance run: a quarter of each default width (PGGAN 16 -> 4, cap 256 -> 64)
          "cpu16": {"dcgan": {"width": 16}, "d2gan": {"width": 16}, "pggan": {"width": 4, "max_width": 64}}}


def bench_one(name: str, overrides: dict, device: str, batch: int, steps: int, warmup: int, repeat: int) -> dict:
    torch.manual_seed(0)
    gan = create_gan(name, n_classes=10, channels=1, size=64, **overrides).to(device)
    gan.set_progress(1.0)
    opt_g = torch.optim.Adam(gan.G.parameters(), gan.default_lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(gan.D.parameters(), gan.default_lr, betas=(0.5, 0.999))
    real = torch.rand(batch, 1, 64, 64, device=device) * 2 - 1
    y = torch.randint(0, 10, (batch,), device=device)
    bf16 = device == "cuda"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        gan_step(gan, gan.G, gan.D, opt_g, opt_d, real, y, autocast)
    sync()
    best, foreign = float("inf"), 0.0
    for _ in range(repeat):
        with CpuWatch() as watch:
            start = time.perf_counter()
            for _ in range(steps):
                gan_step(gan, gan.G, gan.D, opt_g, opt_d, real, y, autocast)
            sync()
            took = time.perf_counter() - start
        if took < best:
            best, foreign = took, watch.foreign
    ips = steps * batch / best
    return {"gan": name, "device": device, "bf16": bf16, "overrides": overrides,
            "params_G": sum(p.numel() for p in gan.G.parameters()),
            "params_D": sum(p.numel() for p in gan.D.parameters()),
            "images_per_s": round(ips, 1), "step_s": round(best / steps, 3),
            "epoch_60k_min_extrapolated": round(FULL_EPOCH / ips / 60, 1), "foreign_cpu_s": round(foreign, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", choices=sorted(WIDTHS), default="default")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="all: CPU, plus CUDA when a GPU is present")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else \
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for name in list_gans():
            row = bench_one(name, WIDTHS[args.widths][name], device, args.batch, args.steps, args.warmup, args.repeat)
            rows.append(row)
            print(json.dumps(row), flush=True)
        base = next(r for r in rows if r["gan"] == "dcgan" and r["device"] == device)["images_per_s"]
        for r in rows:
            if r["device"] == device:
                r["speed_vs_dcgan"] = round(r["images_per_s"] / base, 2)
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "gpu": torch.cuda.get_device_name() if "cuda" in devices else None,
                          "torch": torch.__version__},
              "widths": args.widths, "batch": args.batch, "rows": rows}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
