"""Train the slice VAE (app/diffusion/vae.py) on single frequency slices of an extracted dataset.

A plain loop in the manner of nanoGPT, readable top to bottom:

    python -m app train vae --data DATASET_DIR --out RUN_DIR [--steps N] [--batch B] [--lr LR]
        [--config tiny|small|default] [--crop WxH] [--device auto|cpu|cuda] [--resume]
        [--time-limit SECONDS]
    python -m app.train.vae ...                              (the same)
    torchrun --nproc_per_node 8 -m app.train.vae ...         (data-parallel)

Data: windows of the 'train' split with augmentation (SpectralDataset(..., augment=True): flip,
crop-and-resize, colour jitter), one random band per example, i.e. normalized slices (B, 4, H, W)
(--slices-per-window S takes S distinct bands of each window instead: the augmentation, which
works on all K bands, then serves S slices; --batch still counts slices);
--crop takes a random WxH window of them (the same window for the whole batch) to train faster on
small machines (the VAE is convolutional, so it applies to full slices unchanged).
Loss: app.diffusion.vae.vae_loss (L1 + 0.2 gradient consistency + 1e-6 KL), AdamW, warm-up and
cosine decay, bf16 autocast on CUDA.

At the end (rank 0): the latent scale factor (1 / std of the latent means over training slices)
goes into the VAE's config, the validation reconstruction error (mean L1 of the posterior-mean
reconstruction over every band of every 'val' window, in normalized units: comparable to the
paper's 0.024 / 0.018) is measured, and RUN_DIR/vae.safetensors (app.diffusion.weights.save_vae)
is written with the training info. RUN_DIR also gets log.jsonl and checkpoint.pt (--resume).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np
import torch

from app.arguments import parse_size
from app.train import common

WEIGHTS_NAME = "vae.safetensors"

# Architectures (app.diffusion.vae.VAEConfig fields). "small" is the shipped CPU starter's.
CONFIGS = {
    "tiny": {"channels": (8, 16), "downsample_factor": 4, "blocks_per_level": 1},
    "small": {"channels": (8, 16, 32, 64), "downsample_factor": 8, "blocks_per_level": 1},
    "default": {"channels": (16, 32, 64, 128), "downsample_factor": 8, "blocks_per_level": 1},
    "f4": {"channels": (16, 32, 64), "downsample_factor": 4, "blocks_per_level": 2},  # finer latents, stronger
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app train vae",
                                     description="Train the slice VAE on normalized frequency slices.")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ...)")
    parser.add_argument("--out", required=True, help="run folder: log, checkpoint, vae.safetensors")
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS), help="architecture (default small)")
    parser.add_argument("--crop", type=parse_size, default=None,
                        help="train on random WxH windows of the slices (default: whole slices)")
    parser.add_argument("--slices-per-window", type=int, default=1,
                        help="distinct random bands taken from each augmented window (default 1); "
                             "--batch counts slices, so a step loads batch / this many windows")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes per rank (default 0)")
    parser.add_argument("--val-items", type=int, default=None, help="validation windows to score (default all)")
    parser.add_argument("--scale-items", type=int, default=64,
                        help="training windows used to estimate the latent scale (default 64)")
    common.add_common_arguments(parser, steps=2000, batch=8, lr=1e-3)
    return parser


def random_bands(batch: int, num_bands: int, per_window: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, per_window) distinct random band indices per window."""
    return torch.rand(batch, num_bands, generator=generator).argsort(dim=1)[:, :per_window]


def random_band_slices(normalized: torch.Tensor, generator: torch.Generator, per_window: int = 1) -> torch.Tensor:
    """(B, K, 4, H, W) -> (B * per_window, 4, H, W): per_window distinct random bands of each example."""
    batch, num_bands = normalized.shape[:2]
    bands = random_bands(batch, num_bands, min(per_window, num_bands), generator)  # (B, S)
    return normalized[torch.arange(batch)[:, None], bands].flatten(0, 1)


def random_crop(x: torch.Tensor, size: tuple[int, int] | None, generator: torch.Generator) -> torch.Tensor:
    """A random (width, height) window of (B, C, H, W), the same for the whole batch."""
    if size is None:
        return x
    width, height = min(size[0], x.shape[-1]), min(size[1], x.shape[-2])
    top = int(torch.randint(0, x.shape[-2] - height + 1, (1,), generator=generator))
    left = int(torch.randint(0, x.shape[-1] - width + 1, (1,), generator=generator))
    return x[..., top:top + height, left:left + width]


@torch.no_grad()
def reconstruction_error(vae, dataset, device, max_items: int | None = None) -> float | None:
    """Mean L1 of the posterior-mean reconstruction over every band of the windows (normalized units)."""
    vae.eval()
    count = len(dataset) if max_items is None else min(len(dataset), max_items)
    total, elements = 0.0, 0
    for index in range(count):
        x = dataset[index]["normalized"].to(device)  # (K, 4, H, W): the window's slices as a batch
        reconstruction = vae(x, sample_posterior=False).reconstruction.float()
        total += float((reconstruction - x).abs().sum())
        elements += x.numel()
    return total / elements if elements else None


def latent_scale(vae, dataset, device, max_items: int) -> float:
    """1 / std of the latent means over (up to) max_items windows, all bands (no augmentation)."""
    count = min(len(dataset), max_items)
    batches = (dataset[index]["normalized"].to(device) for index in range(count))  # (K, 4, H, W) each
    from app.diffusion.vae import estimate_latent_scale

    return estimate_latent_scale(vae, batches)


def main(argv=None) -> int:
    from app.data.dataset import SpectralDataset
    from app.diffusion.vae import SliceVAE, VAEConfig, vae_loss
    from app.diffusion.weights import save_vae

    args = build_parser().parse_args(argv)
    command = common.command_line("python -m app train vae", argv)
    try:
        runtime = common.setup_runtime(args.device, args.seed, args.threads)
        # Data: augmented training windows; one random band per example is picked in the loop.
        dataset = common.training_windows(args.data, augment=True, seed=args.seed)
        checkpoint = common.resume_checkpoint(args, runtime)
    except ValueError as error:
        return common.fail(error)
    device = runtime.device
    log = common.RunLog(args.out, runtime.is_main)
    per_window = max(1, min(args.slices_per_window, len(dataset.scales), args.batch))
    loader, sampler = common.make_loader(dataset, args.batch // per_window, runtime, args.seed, args.workers)
    generator = torch.Generator().manual_seed(args.seed * 1000 + runtime.rank)  # bands and crops

    # Model, optimizer, and the checkpoint to resume from.
    config = dict(CONFIGS[args.config]) if checkpoint is None else checkpoint["config"]["vae"]
    step = 0
    checkpoint_path = os.path.join(args.out, common.CHECKPOINT_NAME)
    vae = SliceVAE(VAEConfig.from_dict(config)).to(device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    if checkpoint is not None:
        step = common.restore(checkpoint, vae, optimizer)
        generator.manual_seed(args.seed * 1000 + runtime.rank + step)
    model = common.wrap_ddp(vae, runtime)
    crop = f"{args.crop[0]}x{args.crop[1]}" if args.crop else "none"
    log.say(f"vae ({args.config}): {sum(p.numel() for p in vae.parameters()):,} parameters, "
            f"{len(dataset)} training windows, {dataset.scales.shape[0]} bands, crop {crop}, "
            f"batch {args.batch} x {runtime.world_size} slices ({per_window} per window), device {device}, steps {step} -> {args.steps}")

    config = {"vae": vae.config.to_dict(), "name": args.config}
    save = functools.partial(common.save_run, checkpoint_path, vae, optimizer, None, config, args)  # save(step)

    batches = common.endless(loader, sampler)

    def take_step() -> dict:
        x = random_band_slices(next(batches)["normalized"], generator, per_window)  # (B, 4, H, W)
        x = random_crop(x, args.crop, generator).to(device, non_blocking=True)
        with common.autocast(device):
            output = model(x)
        losses = vae_loss(x, output.reconstruction, output.mean, output.logvar)
        common.optimizer_step(optimizer, losses["loss"], vae.parameters())
        return losses

    model.train()
    # recent: the last steps' losses, for the final figures
    step, recent, seconds = common.run_steps(runtime, args, optimizer, step, take_step, log, save, keep=50)

    # The end: checkpoint, latent scale, validation error, weights.
    if runtime.is_main:
        save(step)
        plain = SpectralDataset(args.data, "train", augment=False)
        vae.eval()
        vae.config.scale_factor = latent_scale(vae, plain, device, args.scale_items)
        validation = SpectralDataset(args.data, "val", augment=False)
        val_l1 = reconstruction_error(vae, validation, device, args.val_items)
        train_l1 = reconstruction_error(vae, plain, device, args.val_items or 32)
        final = {k: round(float(np.mean([r[k] for r in recent])), 6) for k in recent[0]} if recent else {}
        training = {
            "stage": "vae", "command": command, "config": args.config, "steps": step,
            "batch": args.batch * runtime.world_size, "slices_per_window": per_window, "lr": args.lr, "crop": crop, "device": device.type,
            "data": os.path.basename(os.path.normpath(args.data)), "train_windows": len(dataset),
            "val_windows": len(validation), "final_losses_last50": final,
            "val_reconstruction_l1": common.rounded(val_l1, 5), "train_reconstruction_l1": common.rounded(train_l1, 5),
            "latent_scale": round(vae.config.scale_factor, 6), "seconds": round(seconds, 1),
        }
        path = os.path.join(args.out, WEIGHTS_NAME)
        save_vae(path, vae, training)
        figures = {key: training[key] for key in ("val_reconstruction_l1", "train_reconstruction_l1", "latent_scale")}
        log.done(step, path, figures, f"validation L1 {training['val_reconstruction_l1']}, "
                                      f"latent scale {vae.config.scale_factor:.4f}")
    common.cleanup(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
