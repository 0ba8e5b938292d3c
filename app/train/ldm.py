"""Stage 1 of the motion prior: train the latent U-Net (app/diffusion/unet.py) on single slices.

A plain loop in the manner of nanoGPT, readable top to bottom:

    python -m app train ldm --data DATASET_DIR --vae VAE_RUN/vae.safetensors --out RUN_DIR
        [--steps N] [--batch B] [--lr LR] [--config tiny|small|default] [--no-flip]
        [--device auto|cpu|cuda] [--resume] [--time-limit SECONDS] [--ema-decay 0.999]
    python -m app.train.ldm ...                              (the same)
    torchrun --nproc_per_node 8 -m app.train.ldm ...         (data-parallel)

The VAE is frozen. Latents: every training window's normalized slices are encoded once with the
VAE (posterior means times its latent scale), together with their horizontally flipped copies
(image mirrored, x displacement negated: flip augmentation done before encoding), and kept in
memory: (windows, views, K, 4, h, w). When that cache would exceed --cache-gb, batches are encoded
on the fly from the augmented dataset instead (flip, crop-and-resize, colour jitter).

Training (the paper's stage 1): random single slices (window, view, band) with the band index
embedding (--slices-per-window G distinct bands of each drawn window, so the U-Net encodes each
image once for G slices; every slice still gets its own t and is denoised on its own), t uniform over the 1000 training steps, the U-Net predicts the noise eps (MSE), the
image condition is dropped with p = 0.1 (classifier-free guidance), AdamW with warm-up and cosine
decay, bf16 autocast on CUDA, EMA of the weights. The frequency attention layers stay off and
frozen (their zero output projection keeps them inert until stage 2, app/train/freq_attn.py).

Writes RUN_DIR/motion_model.safetensors (app.diffusion.weights.save_motion_model: the VAE, the
U-Net with the EMA weights, the dataset's per-band scales, the schedule, the training info with
a validation eps-MSE), log.jsonl and checkpoint.pt (--resume).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.diffusion.schedule import add_noise
from app.train import common

WEIGHTS_NAME = "motion_model.safetensors"
CONDITION_DROPOUT = 0.1  # classifier-free guidance: share of examples trained without the image

# Architectures (app.diffusion.unet.UNetConfig fields; image_downsample and max_bands follow the
# VAE and the data). "small" is the shipped CPU starter's.
CONFIGS = {
    "tiny": {"channels": (16, 32), "blocks_per_level": 1, "image_channels": 8, "head_channels": 8},
    "small": {"channels": (32, 64, 128), "blocks_per_level": 1, "image_channels": 16, "head_channels": 32},
    "default": {"channels": (64, 128, 256), "blocks_per_level": 2, "image_channels": 32, "head_channels": 32},
}


# --- latents -------------------------------------------------------------------------------------


@dataclass
class LatentCache:
    """Encoded windows: latents (N, V, K, 4, h, w) float32 and images (N, V, 3, H, W) uint8, V views."""

    latents: torch.Tensor
    images: torch.Tensor

    def __len__(self) -> int:
        return self.latents.shape[0]


def cache_bytes(dataset, vae, flip: bool) -> int:
    """Memory the LatentCache of a dataset would take."""
    settings = dataset.index["settings"]
    height, width = int(settings["height"]), int(settings["width"])
    h, w = vae.latent_size(height, width)
    views = 2 if flip else 1
    per_view = len(dataset.scales) * vae.config.latent_channels * h * w * 4 + 3 * height * width
    return len(dataset) * views * per_view


@torch.no_grad()
def encode_windows(dataset, vae, device, flip: bool = True, progress: bool = True) -> LatentCache:
    """Encode every window of a SpectralDataset (and its mirror image when flip) with the frozen VAE."""
    from tqdm import tqdm

    from app.core.normalize import normalize_spectrum
    from app.core.spectral import flip_horizontal

    vae.eval()
    all_latents, all_images = [], []
    for index in tqdm(range(len(dataset)), desc="encode latents", unit="window", disable=not progress,
                      file=sys.stderr):
        image, motion = dataset.raw(index)  # uint8 (H, W, 3), Motion (K, 2, H, W)
        views = [(image, motion)]
        if flip:
            views.append((image[:, ::-1], flip_horizontal(motion)))
        latents, images = [], []
        for view_image, view_motion in views:
            normalized = torch.from_numpy(normalize_spectrum(view_motion.spectrum, dataset.scales))  # (K, 4, H, W)
            latents.append(vae.encode_latents(normalized.to(device)).float().cpu())  # (K, 4, h, w)
            images.append(torch.from_numpy(np.ascontiguousarray(view_image.transpose(2, 0, 1))))  # (3, H, W)
        all_latents.append(torch.stack(latents))
        all_images.append(torch.stack(images))
    return LatentCache(torch.stack(all_latents), torch.stack(all_images))


def cached_batches(cache: LatentCache, batch: int, generator: torch.Generator, device, all_bands: bool,
                   per_window: int = 1):
    """Endless random batches (latents (N, 4, h, w), images (N / G, 3, H, W), bands (N,)) from a cache.

    Rows come in groups of G consecutive slices of one window, which share one image (encoded once
    by the U-Net). all_bands=False (stage 1): N = batch random slices, G = per_window distinct bands
    of each window. all_bands=True (stage 2): N = batch * K, G = K: whole examples.
    """
    count, views, num_bands = cache.latents.shape[:3]
    group = num_bands if all_bands else max(1, min(per_window, num_bands, batch))
    windows_per_batch = batch if all_bands else batch // group
    while True:
        windows = torch.randint(0, count, (windows_per_batch,), generator=generator)
        view = torch.randint(0, views, (windows_per_batch,), generator=generator)
        images = cache.images[windows, view].to(device).float() / 255.0  # (B, 3, H, W)
        if all_bands:
            bands = torch.arange(num_bands).repeat(windows_per_batch, 1)  # (B, K)
        else:
            bands = torch.rand(windows_per_batch, num_bands, generator=generator).argsort(dim=1)[:, :group]  # (B, G)
        latents = cache.latents[windows[:, None], view[:, None], bands].flatten(0, 1)  # (B*G, 4, h, w)
        yield latents.to(device), images, bands.flatten().to(device)


@torch.no_grad()
def streamed_batches(loader, sampler, vae, device, generator: torch.Generator, all_bands: bool,
                     per_window: int = 1):
    """Like cached_batches, but encoding augmented dataset batches on the fly (large datasets)."""
    for batch in common.endless(loader, sampler):
        normalized = batch["normalized"].to(device)  # (B, K, 4, H, W)
        size, num_bands = normalized.shape[:2]
        images = batch["image"].to(device)  # (B, 3, H, W)
        if all_bands:
            bands = torch.arange(num_bands).repeat(size, 1)  # (B, K)
        else:
            group = max(1, min(per_window, num_bands))
            bands = torch.rand(size, num_bands, generator=generator).argsort(dim=1)[:, :group]  # (B, G)
        slices = normalized[torch.arange(size)[:, None], bands.to(device)].flatten(0, 1)  # (B*G, 4, H, W)
        yield vae.encode_latents(slices).float(), images, bands.flatten().to(device)


def latent_batches(args, dataset, vae, runtime, generator, all_bands: bool, log):
    """The endless batch source of a training run: the in-memory cache when it fits, else streamed."""
    flip = not args.no_flip
    per_window = getattr(args, "slices_per_window", 1)
    size_gb = cache_bytes(dataset, vae, flip) / 1e9
    if size_gb <= args.cache_gb:
        log.say(f"Caching the latents of {len(dataset)} windows{' and their mirror images' if flip else ''} "
                f"({size_gb * 1000:.0f} MB).")
        cache = encode_windows(dataset, vae, runtime.device, flip, progress=runtime.is_main)
        return cached_batches(cache, args.batch, generator, runtime.device, all_bands, per_window)
    log.say(f"The latent cache would take {size_gb:.1f} GB (> --cache-gb {args.cache_gb:g}): encoding on the fly.")
    from app.data.dataset import SpectralDataset

    augmented = SpectralDataset(args.data, "train", augment=True, seed=args.seed)
    windows_per_batch = args.batch if all_bands else max(1, args.batch // per_window)
    loader, sampler = common.make_loader(augmented, windows_per_batch, runtime, args.seed, args.workers)
    return streamed_batches(loader, sampler, vae, runtime.device, generator, all_bands, per_window)


# --- the loss ------------------------------------------------------------------------------------


def diffusion_loss(model, latents, images, bands, alphas_cumprod, generator, shared_step: bool = False,
                   condition_dropout: float = CONDITION_DROPOUT):
    """eps-prediction MSE of a batch: latents (N, 4, h, w), images (N / G, 3, H, W), bands (N,).

    Each image serves G = N / len(images) consecutive rows (the U-Net encodes it once).
    shared_step False (stage 1): one t and one condition drop per row, slices denoised on their own.
    shared_step True (stage 2): the rows of an image are one example's K slices: one t and one drop
    per example, repeated over its K rows, and the frequency attention sees them together.
    """
    rows = latents.shape[0]
    group = rows // images.shape[0]
    draws = rows // group if shared_step else rows
    repeat = group if shared_step else 1
    t = torch.randint(0, len(alphas_cumprod), (draws,), generator=generator).repeat_interleave(repeat)
    drop = (torch.rand(draws, generator=generator) < condition_dropout).repeat_interleave(repeat)
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    t, drop = t.to(latents.device), drop.to(latents.device)
    noisy = add_noise(latents, noise, t, alphas_cumprod)  # (N, 4, h, w)
    with common.autocast(latents.device):
        eps = model(noisy, t, bands, images, num_bands=group, drop_image=drop)
    return F.mse_loss(eps.float(), noise)


@torch.no_grad()
def validation_loss(unet, cache: LatentCache | None, alphas_cumprod, seed: int = 0,
                    timesteps=(50, 150, 250, 350, 450, 550, 650, 750, 850, 950)) -> float | None:
    """eps-MSE on validation windows (first view), conditioned, at fixed t and fixed noise.

    Each window's K slices go in together, so the frequency attention takes part when it is on.
    """
    if cache is None or len(cache) == 0:
        return None
    unet.eval()
    device = next(unet.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for index in range(len(cache)):
        latents = cache.latents[index, 0].to(device)  # (K, 4, h, w)
        image = cache.images[index, 0][None].to(device).float() / 255.0  # (1, 3, H, W)
        num_bands = latents.shape[0]
        bands = torch.arange(num_bands, device=device)
        for step in timesteps:
            t = torch.full((num_bands,), step, device=device)
            noise = torch.randn(latents.shape, generator=generator).to(device)
            noisy = add_noise(latents, noise, t, alphas_cumprod)
            with common.autocast(device):
                eps = unet(noisy, t, bands, image, num_bands=num_bands)
            total += float(F.mse_loss(eps.float(), noise))
            count += 1
    unet.train()
    return total / count


# --- command line --------------------------------------------------------------------------------


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options stage 1 and stage 2 share about their data."""
    parser.add_argument("--no-flip", action="store_true", help="no flipped copies in the latent cache")
    parser.add_argument("--cache-gb", type=float, default=8.0,
                        help="largest latent cache kept in memory, else encode on the fly (default 8)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes when streaming")
    parser.add_argument("--val-items", type=int, default=16, help="validation windows for the eps-MSE (default 16)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app train ldm",
                                     description="Stage 1: train the latent U-Net on single frequency slices.")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ...)")
    parser.add_argument("--vae", required=True, help="trained VAE (VAE_RUN/vae.safetensors)")
    parser.add_argument("--out", required=True, help="run folder: log, checkpoint, motion_model.safetensors")
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS), help="U-Net architecture (default small)")
    parser.add_argument("--slices-per-window", type=int, default=4,
                        help="distinct random bands per window in a batch; they share the image "
                             "encoding, which dominates the cost of small U-Nets (default 4)")
    add_data_arguments(parser)
    common.add_common_arguments(parser, steps=20000, batch=32, lr=2e-4, ema_decay=0.999)
    return parser


def model_config_of(dataset):
    """The MotionModelConfig that matches a dataset's extraction settings."""
    from app.diffusion.weights import MotionModelConfig

    settings = dataset.index["settings"]
    return MotionModelConfig(width=int(settings["width"]), height=int(settings["height"]),
                             num_bands=len(dataset.scales), num_frames=int(settings["num_frames"]),
                             fps=float(settings["fps"]))


def validation_cache(args, vae, device) -> LatentCache | None:
    """The first --val-items validation windows, encoded (no flips)."""
    from app.data.dataset import SpectralDataset

    validation = SpectralDataset(args.data, "val", augment=False)
    if len(validation) == 0 or args.val_items < 1:
        return None
    validation.windows = validation.windows[: args.val_items]
    return encode_windows(validation, vae, device, flip=False, progress=False)


# --- training ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    from app.diffusion.schedule import NoiseSchedule
    from app.diffusion.unet import MotionUNet, UNetConfig
    from app.diffusion.weights import MotionModel, load_vae, save_motion_model

    args = build_parser().parse_args(argv)
    command = common.command_line("python -m app train ldm", argv)
    try:
        runtime = common.setup_runtime(args.device, args.seed, args.threads)
        vae = load_vae(args.vae, device=runtime.device)
        dataset = common.training_windows(args.data)
        checkpoint = common.resume_checkpoint(args, runtime)
    except ValueError as error:
        return common.fail(error)
    device = runtime.device
    log = common.RunLog(args.out, runtime.is_main)
    vae.requires_grad_(False)
    schedule = NoiseSchedule()
    alphas_cumprod = schedule.alphas_cumprod().to(device)
    num_bands = len(dataset.scales)

    # Model (frequency attention off and frozen in stage 1), optimizer, EMA, checkpoint.
    config = dict(CONFIGS[args.config], image_downsample=vae.config.downsample_factor, max_bands=max(16, num_bands))
    if checkpoint is not None:
        config = checkpoint["config"]["unet"]
    checkpoint_path = os.path.join(args.out, common.CHECKPOINT_NAME)
    unet = MotionUNet(UNetConfig.from_dict(config)).to(device)
    for parameter in unet.frequency_attention_parameters():
        parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.base_parameters(), lr=args.lr, weight_decay=0.0)
    ema = common.EMA(unet, args.ema_decay)
    step = 0 if checkpoint is None else common.restore(checkpoint, unet, optimizer, ema)
    model = common.wrap_ddp(unet, runtime)
    generator = torch.Generator().manual_seed(args.seed * 1000 + runtime.rank + step)

    batches = latent_batches(args, dataset, vae, runtime, generator, all_bands=False, log=log)
    val_cache = validation_cache(args, vae, device) if runtime.is_main else None
    counts = sum(p.numel() for p in unet.base_parameters())
    model_config = model_config_of(dataset)
    latent_height, latent_width = vae.latent_size(model_config.height, model_config.width)
    log.say(f"ldm stage 1 ({args.config}): {counts:,} U-Net parameters, {len(dataset)} training windows, "
            f"{num_bands} bands, latents {latent_height}x{latent_width}, batch {args.batch} x "
            f"{runtime.world_size} slices ({args.slices_per_window} per window), device {device}, "
            f"steps {step} -> {args.steps}")

    config = {"unet": unet.config.to_dict(), "name": args.config}
    save = functools.partial(common.save_run, checkpoint_path, unet, optimizer, ema, config, args)  # save(step)

    def take_step() -> dict:
        latents, images, bands = next(batches)  # (B, 4, h, w), (B / G, 3, H, W), (B,)
        loss = diffusion_loss(model, latents, images, bands, alphas_cumprod, generator)
        common.optimizer_step(optimizer, loss, unet.base_parameters())
        ema.update(unet)
        return {"loss": loss}

    model.train()
    step, recent, seconds = common.run_steps(runtime, args, optimizer, step, take_step, log, save, keep=100)

    # The end: checkpoint, then the motion model with the EMA weights.
    if runtime.is_main:
        save(step)
        ema.copy_to(unet)
        val_mse = validation_loss(unet, val_cache, alphas_cumprod)
        training = {
            "stage": "ldm",
            "vae": getattr(vae, "training_info", {}),
            "ldm": {"command": command, "config": args.config, "steps": step,
                    "batch": args.batch * runtime.world_size, "lr": args.lr, "ema_decay": args.ema_decay,
                    "flip": not args.no_flip, "slices_per_window": args.slices_per_window,
                    "device": device.type, "data": os.path.basename(os.path.normpath(args.data)),
                    "train_windows": len(dataset),
                    "final_loss_last100": round(float(np.mean([r["loss"] for r in recent])), 6) if recent else None,
                    "val_eps_mse": common.rounded(val_mse),
                    "seconds": round(seconds, 1)},
        }
        motion_model = MotionModel(vae, unet, dataset.scales, model_config, schedule, training)
        path = save_motion_model(os.path.join(args.out, WEIGHTS_NAME), motion_model)
        val_mse = training["ldm"]["val_eps_mse"]
        log.done(step, path, {"val_eps_mse": val_mse}, f"EMA weights; validation eps-MSE {val_mse}")
    common.cleanup(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
