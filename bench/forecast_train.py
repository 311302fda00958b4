"""CrossAttnRNN training throughput: cached embeddings vs re-encoding, Ray Train vs a plain loop.

(a) One training epoch with the frozen encoders' vectors read from the embedding cache, against
    training steps that re-run the frozen encoders (the default EfficientNet-Lite0 on the batch's
    pre-decoded 64 px images, MiniLM on its captions) before every step. Samples/s of both, and their ratio.
(b) The same epochs (same batches: same seed, same permutation) as a plain PyTorch loop in this
    process and inside a 1-worker Ray Train `TorchTrainer`; each epoch is timed where it runs, so
    Ray's fixed start-up (worker group, process group, checkpoint writes) is reported separately.
(c) On a machine with a GPU: samples/s of the plain loop on the GPU in fp32 and in bf16 autocast.
(d) The pretrained image encoder frozen (its cached vectors: the epochs of (b)) against fine-tuned
    (`model.image_encoder: efficientnet_lite0`, the trunk trained on the decoded images of the Ray
    Data images stage, with `model.augment`): samples/s of both in the same plain loop, their ratio,
    and the one-off decoding time. `--finetune-only` runs (b)'s plain loop and (d) alone.
Every timed block reports the CPU seconds other processes used meanwhile (`foreign_cpu_s`): on a
shared machine compare ratios taken inside one run, not absolute numbers across runs.

    python bench/forecast_train.py [--scale 400] [--epochs 3] [--reencode-steps 6] [--finetune-steps 6]
                                   [--finetune-only] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from data_pipeline import CpuWatch  # noqa: E402


def timed(fn):
    with CpuWatch() as watch:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    return out, seconds, round(watch.foreign + watch.steal, 1)


def finetune(args, cfg, source: Path, work: Path, ctx, n: int) -> dict:
    """(d) training steps with the EfficientNet-Lite0 trunk fine-tuned on the products' decoded images."""
    import torch

    from raydemand.config import load_config
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.config import ForecastConfig
    from raydemand.forecast.losses import ForecastLoss
    from raydemand.forecast.run import prepare_training
    from raydemand.forecast.train import build_model, epoch_batches, train_epoch

    tcfg = load_config(ForecastConfig, None, [f"batch_size={cfg.batch_size}", f"data.image_size={cfg.data.image_size}",
                                              "model.image_encoder=efficientnet_lite0"])
    data, decode_s, decode_foreign = timed(lambda: prepare_training(tcfg, source, work / "cache"))
    forecaster = create_forecaster("crossattnrnn", tcfg)
    arrays = forecaster.inputs(data.train, data.pool)
    model = build_model(tcfg, forecaster.fit_vocab(data.train))
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr)
    loss_fn = ForecastLoss(tcfg.loss)
    batches = epoch_batches(n, tcfg, 0)[:args.finetune_steps + 1]
    train_epoch(model, opt, loss_fn, arrays, tcfg, 0, ctx, batches=batches[:1])  # warm-up (allocations)
    _, s, foreign = timed(lambda: train_epoch(model, opt, loss_fn, arrays, tcfg, 0, ctx, batches=batches[1:]))
    return {"finetune_samples_per_s": round(sum(len(b) for b in batches[1:]) / s, 1),
            "finetune_foreign_cpu_s": foreign, "finetune_augment": tcfg.model.augment,
            "finetune_image_size": tcfg.data.image_size, "finetune_products": int(len(data.pool.pixels) - 1),
            "finetune_image_decode_s": round(decode_s, 1), "finetune_image_decode_foreign_cpu_s": decode_foreign}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=400, help="products of the generated VISUELLE 2.0 data")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--reencode-steps", type=int, default=6, help="training steps timed with re-encoding")
    p.add_argument("--finetune-steps", type=int, default=6, help="training steps timed with the fine-tuned trunk (0: skip)")
    p.add_argument("--finetune-only", action="store_true", help="only the plain cached epochs and (d)")
    p.add_argument("--work", default=None, help="working folder (default: a temp folder)")
    args = p.parse_args()

    import torch

    from raydemand.config import load_config
    from raydemand.data.pipelines.images import ImagesConfig, preprocess_image
    from raydemand.data.synth import synthesize
    from raydemand.encoders import create_encoder
    from raydemand.forecast.config import ForecastConfig
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.losses import ForecastLoss
    from raydemand.forecast.run import prepare_training
    from raydemand.forecast.train import build_model, epoch_batches, to_tensors, train_epoch, train_loop
    from raydemand.ray_utils import init_ray
    from raydemand.training import WorkerContext, fit

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_forecast_"))
    source = work / "visuelle2"
    if not source.exists():
        synthesize("visuelle2", source, seed=0, scale=args.scale)
    cfg = load_config(ForecastConfig, None, [f"epochs={args.epochs}", "patience=null",
                                             f"batch_size={args.batch_size}", "data.image_size=64"])
    init_ray()
    data, cache_s, cache_foreign = timed(lambda: prepare_training(cfg, source, work / "cache"))
    # the model's inputs as CrossAttnForecaster.fit builds them (attribute codes included)
    forecaster = create_forecaster("crossattnrnn", cfg)
    dims = forecaster.fit_vocab(data.train)
    arrays = forecaster.inputs(data.train, data.pool)
    val = forecaster.inputs(data.val, data.pool)
    n = len(data.train)
    ctx = WorkerContext(torch.device("cpu"), 0, 1, bf16=False)
    torch.set_num_threads(1)  # as a Ray Train worker with 1 CPU runs
    result = {"train_rows": n, "batch_size": cfg.batch_size, "epochs": args.epochs,
              "embedding_cache_s": round(cache_s, 1), "embedding_cache_foreign_cpu_s": cache_foreign}

    # (b) plain loop, then (a) the cached epoch is its fastest epoch
    model = build_model(cfg, dims)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    loss_fn = ForecastLoss(cfg.loss)
    plain = []
    for epoch in range(args.epochs):
        _, s, foreign = timed(lambda: train_epoch(model, opt, loss_fn, arrays, cfg, epoch, ctx))
        plain.append((s, foreign))
    plain_best = min(s for s, _ in plain)
    result["plain_epoch_s"] = [round(s, 3) for s, _ in plain]
    result["plain_foreign_cpu_s"] = [f for _, f in plain]
    result["cached_samples_per_s"] = round(n / plain_best, 1)
    result["frozen_encoder"] = cfg.data.image_encoder

    if args.finetune_steps:
        result.update(finetune(args, cfg, source, work, ctx, n))
        result["frozen_vs_finetune"] = round(result["cached_samples_per_s"] / result["finetune_samples_per_s"], 1)
    if args.finetune_only:
        print(json.dumps(result, indent=2))
        return

    # (a) re-encoding: the frozen encoders run on every batch (images decoded beforehand, not timed)
    images_cfg = ImagesConfig(size=64)
    codes = data.train.keys["external_code"].astype(str).to_numpy()
    from raydemand.forecast.data import load_table

    table = load_table(source, split="train").drop_duplicates("external_code").set_index("external_code")
    from raydemand.forecast.captions import AttributeCaptioner

    products = table.reset_index()
    captions = dict(zip(products["external_code"], AttributeCaptioner()({c: products[c].astype(str).to_numpy()
                                                                         for c in products.columns})))
    decoded = {c: preprocess_image(table.loc[c, "image_path"], images_cfg) for c in np.unique(codes)}
    image_encoder = create_encoder(cfg.data.image_encoder)
    text_encoder = create_encoder(cfg.data.text_encoder, pooling=cfg.data.text_pooling)
    batches = epoch_batches(n, cfg, 0)[:args.reencode_steps]

    def reencode_steps():
        model.train()
        for idx in batches:
            batch = to_tensors(arrays, idx, "cpu")
            batch["image"] = torch.as_tensor(image_encoder.encode(np.stack([decoded[c] for c in codes[idx]])))
            batch["caption"] = torch.as_tensor(text_encoder.encode([captions[c] for c in codes[idx]]))
            terms = loss_fn(model(batch), batch)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()

    _, s, foreign = timed(reencode_steps)
    steps_samples = sum(len(b) for b in batches)
    result["reencode_samples_per_s"] = round(steps_samples / s, 1)
    result["reencode_foreign_cpu_s"] = foreign
    result["cached_vs_reencode"] = round(result["cached_samples_per_s"] / result["reencode_samples_per_s"], 1)

    # (b) the same epochs inside a 1-worker Ray Train run
    loop_config = {"cfg": cfg.model_dump(mode="json"), "dims": dims, "train": arrays, "val": val}
    with tempfile.TemporaryDirectory(dir=work) as run_dir:
        fitted, wall, foreign = timed(lambda: fit(train_loop, loop_config, run_dir, cfg.train))
    ray_epochs = [h["epoch_seconds"] for h in fitted.history]
    result["ray_epoch_s"] = [round(s, 3) for s in ray_epochs]
    result["ray_fit_wall_s"] = round(wall, 1)
    result["ray_foreign_cpu_s"] = foreign
    result["ray_vs_plain_epoch"] = round(min(ray_epochs) / plain_best, 3)
    result["ray_fixed_overhead_s"] = round(wall - sum(ray_epochs), 1)  # start-up, validation, checkpoints

    # (c) GPU: fp32 vs bf16 autocast in a plain loop
    if torch.cuda.is_available():
        for bf16 in (False, True):
            gctx = WorkerContext(torch.device("cuda"), 0, 1, bf16=bf16)
            gmodel = build_model(cfg, dims).cuda()
            gopt = torch.optim.AdamW(gmodel.parameters(), lr=cfg.lr)
            train_epoch(gmodel, gopt, loss_fn, arrays, cfg, 0, gctx)  # warm-up
            torch.cuda.synchronize()
            _, s, _ = timed(lambda: (train_epoch(gmodel, gopt, loss_fn, arrays, cfg, 1, gctx), torch.cuda.synchronize()))
            result[f"gpu_{'bf16' if bf16 else 'fp32'}_samples_per_s"] = round(n / s, 1)
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
