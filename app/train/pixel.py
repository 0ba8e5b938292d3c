"""Train the pixel-space motion prior (app/diffusion/pixel.py), readable top to bottom.

    python -m app train pixel --data DATASET_DIR --out RUN_DIR [--size 80x48] [--widths tiny|lite|small|default]
        [--steps N] [--batch B] [--lr LR] [--device auto|cpu|cuda] [--resume] [--time-limit SECONDS]
        [--init MODEL] [--crops N] [--paste P] [--guidance W] [--guidance-top W] [--envelope]
    torchrun --nproc_per_node 8 -m app.train.pixel ...   (data-parallel)

--init continues from a model file's weights (its grid, widths and data scale); --crops adds N random
crops per window to the prepared views; --guidance stores the classifier-free guidance weight that
sampling uses by default for band 1, --guidance-top the one for the top band (geometric in between;
measure them with python -m app eval motion --guidance W --guidance-top W). A resumed run adds up its
training time in the model's record; a run from --init keeps the record of the model it continues
(--init MODEL --steps 0 --guidance W --guidance-top W sets a model's guidance without training it).

Data. Every training window (and its mirror image: photo flipped, x displacement negated) is
prepared once and kept in memory: the photo at twice the model grid, and bands 1..K-1 of its
spectrum resized to the model grid (displacements scale with it) and frequency-normalized with
the dataset's per-band scales. Windows are drawn with weight 1 / (windows of their clip), so a clip
with many windows (a long video, a loop taken at a small stride) cannot dominate.

--paste P pastes, in a share P of the training rows, a rectangle of another window's photo and motion
into the row (the same rectangle in both): layouts the clips never had, where only the photo tells
which part moves and how (app.train.pixel.paste_rectangles).

--envelope also diffuses each band's magnitude per pixel (app.diffusion.pixel.with_envelope); from --init
of a model without them, their input weights start at zero and their outputs at zero.

Training. t uniform over the schedule's steps, v-prediction MSE, the photo dropped with p = 0.1
for classifier-free guidance, brightness/contrast jitter on the photo, AdamW with warm-up and
cosine decay, EMA of the weights, checkpoints every --save-every steps (--resume continues).
Validation: v-MSE on validation windows at fixed steps and noise, logged every --val-every steps.

Writes RUN_DIR/motion_model.safetensors (EMA weights, scales, config, training record), log.jsonl,
checkpoint.pt.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from app.arguments import parse_size
from app.train import common

WEIGHTS_NAME = "motion_model.safetensors"
CONDITION_DROPOUT = 0.1
WIDTHS = {"tiny": (16, 32), "lite": (24, 48, 96), "small": (32, 64, 128), "default": (48, 96, 192)}


def window_views(image: np.ndarray, motion, flip: bool, crops: int, rng: np.random.Generator) -> list:
    """The (photo, Motion) views of one window: itself, its mirror image, and `crops` random crops
    (60-90% of each side, same aspect, mirrored at random); displacements stay in pixels of the crop."""
    from app.core.spectral import crop_motion, flip_horizontal

    views = [(image, motion)] + ([(image[:, ::-1], flip_horizontal(motion))] if flip else [])
    height, width = image.shape[:2]
    for _ in range(crops):
        fraction = rng.uniform(0.6, 0.9)
        crop_height, crop_width = max(8, round(height * fraction)), max(8, round(width * fraction))
        top, left = int(rng.integers(0, height - crop_height + 1)), int(rng.integers(0, width - crop_width + 1))
        crop_image = image[top:top + crop_height, left:left + crop_width]
        crop = crop_motion(motion, top, left, crop_height, crop_width)
        if flip and rng.random() < 0.5:
            crop_image, crop = crop_image[:, ::-1], flip_horizontal(crop)
        views.append((crop_image, crop))
    return views


def prepare_windows(dataset, config, flip: bool = True, crops: int = 0, seed: int = 0):
    """(photos uint8 (N, V, 3, 2h, 2w), motions float32 (N, V, 4 (K-1), h, w)) for V views per window
    (see window_views): photo at twice the model grid, bands resized to the grid and normalized."""
    import cv2

    from app.core.spectral import resize_motion
    from app.diffusion.pixel import spectrum_to_stacked

    image_width, image_height = config.image_size
    rng = np.random.default_rng(seed)
    photos, motions = [], []
    for index in range(len(dataset)):
        image, motion = dataset.raw(index)
        view_photos, view_motions = [], []
        for view_image, view_motion in window_views(image, motion, flip, crops, rng):
            photo = cv2.resize(np.ascontiguousarray(view_image), (image_width, image_height),
                               interpolation=cv2.INTER_AREA)
            small = resize_motion(view_motion, config.height, config.width)
            view_photos.append(photo.transpose(2, 0, 1))
            view_motions.append(spectrum_to_stacked(small.spectrum, dataset.scales))
        photos.append(np.stack(view_photos))
        motions.append(np.stack(view_motions))
    return torch.from_numpy(np.stack(photos)), torch.from_numpy(np.stack(motions))


def jitter(photos: torch.Tensor, generator: torch.Generator, strength: float = 0.15) -> torch.Tensor:
    """Random brightness and contrast per photo (N, 3, H, W) in [0, 1]."""
    count = photos.shape[0]
    brightness = 1 + (torch.rand(count, 1, 1, 1, generator=generator) * 2 - 1) * strength
    contrast = 1 + (torch.rand(count, 1, 1, 1, generator=generator) * 2 - 1) * strength
    mean = photos.mean(dim=(1, 2, 3), keepdim=True)
    return ((photos * brightness - mean) * contrast + mean).clamp(0, 1)


def paste_rectangles(photos: torch.Tensor, motions: torch.Tensor, generator: torch.Generator,
                     probability: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut-and-paste between the rows of a batch, photo and motion together.

    photos (B, 3, s h, s w), motions (B, C, h, w). With `probability`, a row receives a rectangle
    (30-70 % of each side) cut from another row at a random place and pasted at a random place, into
    its photo and its motion alike, so the pasted motion stays on the pasted content.
    """
    rows, _, height, width = motions.shape
    scale = photos.shape[-1] // width
    pasted_photos, pasted_motions = photos.clone(), motions.clone()
    sources = torch.randperm(rows, generator=generator)
    for row in range(rows):
        source = int(sources[row])
        if rows < 2 or float(torch.rand(1, generator=generator)) >= probability:
            continue
        if source == row:
            source = (row + 1) % rows
        size = torch.rand(2, generator=generator) * 0.4 + 0.3
        box_h, box_w = max(1, int(height * float(size[0]))), max(1, int(width * float(size[1])))
        corners = torch.rand(4, generator=generator)
        from_top, from_left = int(corners[0] * (height - box_h + 1)), int(corners[1] * (width - box_w + 1))
        to_top, to_left = int(corners[2] * (height - box_h + 1)), int(corners[3] * (width - box_w + 1))
        pasted_motions[row, :, to_top:to_top + box_h, to_left:to_left + box_w] = \
            motions[source, :, from_top:from_top + box_h, from_left:from_left + box_w]
        pasted_photos[row, :, scale * to_top:scale * (to_top + box_h), scale * to_left:scale * (to_left + box_w)] = \
            photos[source, :, scale * from_top:scale * (from_top + box_h), scale * from_left:scale * (from_left + box_w)]
    return pasted_photos, pasted_motions


def diffusion_loss(net, motions, photos, alphas_cumprod, generator, dropout: float = CONDITION_DROPOUT):
    """v-prediction MSE of a batch: motions (B, C, h, w), photos (B, 3, 2h, 2w) in [0, 1]."""
    from app.diffusion.pixel import v_target
    from app.diffusion.schedule import add_noise, alpha_bar_at

    rows = motions.shape[0]
    t = torch.randint(0, len(alphas_cumprod), (rows,), generator=generator).to(motions.device)
    drop = (torch.rand(rows, generator=generator) < dropout).to(motions.device)
    noise = torch.randn(motions.shape, generator=generator).to(motions.device)
    noisy = add_noise(motions, noise, t, alphas_cumprod)
    alpha = alpha_bar_at(alphas_cumprod, t, motions)
    with common.autocast(motions.device):
        v = net(noisy, t, photos, drop_image=drop)
    return F.mse_loss(v.float(), v_target(motions, noise, alpha))


def widen_for_envelope(state: dict, config) -> dict:
    """Weights of a network without envelope channels -> with them (config.envelope): the new input
    channels start with zero weight, the new output channels at zero, everything else unchanged."""
    motion, extra = config.motion_channels, config.num_bands - 1
    state = dict(state)
    weight = state["conv_in.weight"]  # (C, motion + image features + 3, 3, 3)
    state["conv_in.weight"] = torch.cat([weight[:, :motion], weight.new_zeros(weight.shape[0], extra, *weight.shape[2:]),
                                         weight[:, motion:]], dim=1)
    state["conv_out.weight"] = torch.cat([state["conv_out.weight"],
                                          state["conv_out.weight"].new_zeros(extra, *state["conv_out.weight"].shape[1:])])
    state["conv_out.bias"] = torch.cat([state["conv_out.bias"], state["conv_out.bias"].new_zeros(extra)])
    return state


def envelope_statistics(motions: torch.Tensor, config) -> tuple[float, float]:
    """Mean and standard deviation of the band magnitudes of stacked bands (N, V, 4 (K-1), h, w)."""
    from app.diffusion.pixel import band_magnitudes

    magnitudes = band_magnitudes(motions.flatten(0, 1), config.num_bands)
    return round(float(magnitudes.mean()), 4), round(max(float(magnitudes.std()), 1e-3), 4)


@torch.no_grad()
def validation_loss(net, photos, motions, alphas_cumprod, seed: int = 0,
                    timesteps=(50, 200, 350, 500, 650, 800, 950)) -> float | None:
    """v-MSE on validation windows (first view), conditioned, at fixed t and fixed noise."""
    from app.diffusion.pixel import v_target, with_envelope
    from app.diffusion.schedule import add_noise, alpha_bar_at

    if photos is None or len(photos) == 0:
        return None
    net.eval()
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    x0 = with_envelope(motions[:, 0].to(device), net.config)
    image = photos[:, 0].to(device).float() / 255.0
    total = 0.0
    for step in timesteps:
        t = torch.full((len(x0),), min(step, len(alphas_cumprod) - 1), device=device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        noisy = add_noise(x0, noise, t, alphas_cumprod)
        v = net(noisy, t, image)
        total += float(F.mse_loss(v.float(), v_target(x0, noise, alpha_bar_at(alphas_cumprod, t, x0))))
    net.train()
    return total / len(timesteps)


def last_logged_seconds(run_dir: str) -> float:
    """The training seconds of the last log record of a run (for checkpoints that do not keep them)."""
    if not os.path.isfile(os.path.join(run_dir, common.LOG_NAME)):
        return 0.0
    seconds = [record["seconds"] for record in common.read_log(run_dir) if "seconds" in record]
    return float(seconds[-1]) if seconds else 0.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app train pixel",
                                     description="Train the pixel-space motion prior.")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ...)")
    parser.add_argument("--out", required=True, help="run folder: log, checkpoint, motion_model.safetensors")
    parser.add_argument("--size", type=parse_size, default=(80, 48), help="model grid WxH (default 80x48)")
    parser.add_argument("--widths", default="default", choices=sorted(WIDTHS), help="network widths (default default)")
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "linear", "scaled_linear"])
    parser.add_argument("--no-flip", action="store_true", help="no mirrored copies of the windows")
    parser.add_argument("--no-clip-balance", action="store_true", help="draw windows uniformly, not per clip")
    parser.add_argument("--crops", type=int, default=0, choices=range(0, 17), metavar="0..16",
                        help="random crops per window, prepared once, besides the window and its mirror (default 0)")
    parser.add_argument("--paste", type=float, default=0.0, metavar="P",
                        help="share of training rows that get a rectangle of another window pasted into photo "
                             "and motion alike (default 0)")
    parser.add_argument("--guidance", type=float, default=None, metavar="W",
                        help="classifier-free guidance weight stored as the model's default for sampling; choose "
                             "it with python -m app eval motion --guidance (default: the --init model's, else 1.75)")
    parser.add_argument("--guidance-top", type=float, default=None, metavar="W",
                        help="the stored guidance weight of the top band (bands between: geometric); default: the "
                             "--init model's, else the same as --guidance")
    parser.add_argument("--envelope", action="store_true",
                        help="also diffuse each band's magnitude per pixel (a target that depends on the photo)")
    parser.add_argument("--init", default=None, metavar="MODEL",
                        help="start from a trained pixel model's weights (its grid, widths and data scale)")
    parser.add_argument("--val-every", type=int, default=500, help="validation v-MSE every N steps (default 500)")
    common.add_common_arguments(parser, steps=100000, batch=16, lr=5e-4, ema_decay=0.999)
    return parser


def main(argv=None) -> int:
    from app.data.dataset import SpectralDataset
    from app.data.extract import clip_weights
    from app.diffusion.pixel import (PixelModelConfig, PixelMotionModel, PixelMotionNet, load_pixel_model,
                                     save_pixel_model, with_envelope)
    from app.diffusion.schedule import NoiseSchedule

    args = build_parser().parse_args(argv)
    command = common.command_line("python -m app train pixel", argv)
    try:
        runtime = common.setup_runtime(args.device, args.seed, args.threads)
        dataset = SpectralDataset(args.data, "train", augment=False)
        validation = SpectralDataset(args.data, "val", augment=False)
        if len(dataset) == 0:
            raise ValueError(f"The dataset '{args.data}' has no training windows.")
        settings = dataset.index["settings"]
        initial = load_pixel_model(args.init, "cpu") if args.init else None
        if initial is not None:
            config = initial.config  # the grid, widths, schedule and data scale of the model it continues
            if not np.allclose(initial.scales, dataset.scales, rtol=0.02):
                raise ValueError(f"'{args.init}' was trained with other band scales than '{args.data}' has.")
        else:
            width, height = args.size
            config = PixelModelConfig(width=width, height=height, num_bands=len(dataset.scales),
                                      num_frames=int(settings["num_frames"]), fps=float(settings["fps"]),
                                      channels=WIDTHS[args.widths], schedule=args.schedule)
        if args.guidance is not None:
            config = dataclasses.replace(config, guidance=args.guidance)  # (its range is checked)
        if args.guidance_top is not None:
            config = dataclasses.replace(config, guidance_top=args.guidance_top)
        widen = args.envelope and not config.envelope  # (an --init model without envelope channels)
        if args.envelope:
            config = dataclasses.replace(config, envelope=True)
        if not 0.0 <= args.paste <= 1.0:
            raise ValueError(f"--paste is a share of the training rows, between 0 and 1, not {args.paste:g}.")
        width, height = config.width, config.height
    except ValueError as error:
        return common.fail(error)
    device = runtime.device
    log = common.RunLog(args.out, runtime.is_main)
    alphas_cumprod = NoiseSchedule(config.schedule, config.num_train_steps).alphas_cumprod().to(device)

    log.say(f"Preparing {len(dataset)} training and {len(validation)} validation windows at {width}x{height}.")
    photos, motions = prepare_windows(dataset, config, flip=not args.no_flip, crops=args.crops, seed=args.seed)
    val_photos, val_motions = prepare_windows(validation, config, flip=False) if len(validation) else (None, None)
    checkpoint_path = os.path.join(args.out, common.CHECKPOINT_NAME)
    checkpoint = None
    if args.resume and os.path.isfile(checkpoint_path):
        try:
            checkpoint = common.load_checkpoint(checkpoint_path, device)
            config.data_scale = float(checkpoint["config"]["data_scale"])
        except (ValueError, KeyError, TypeError) as error:
            return common.fail(f"the checkpoint '{checkpoint_path}' does not fit this run ({error}).")
    elif initial is None:  # (--init keeps the data scale its weights were trained with)
        config.data_scale = round(float(1.0 / max(float(motions.std()), 1e-3)), 3)  # unit variance for the diffusion
    motions = motions * config.data_scale
    val_motions = None if val_motions is None else val_motions * config.data_scale
    if config.envelope and checkpoint is None and (initial is None or widen):
        config.envelope_mean, config.envelope_std = envelope_statistics(motions, config)
        log.say(f"Band magnitudes: mean {config.envelope_mean:g}, deviation {config.envelope_std:g} (diffusion units).")
    elif checkpoint is not None and config.envelope:
        config.envelope_mean = float(checkpoint["config"]["envelope_mean"])
        config.envelope_std = float(checkpoint["config"]["envelope_std"])
    log.say(f"Normalized bands have a standard deviation of {1 / config.data_scale:.3f}: "
            f"the diffusion sees them times {config.data_scale:g}.")
    weights = torch.ones(len(dataset), dtype=torch.float64) if args.no_clip_balance else \
        torch.from_numpy(clip_weights(dataset.windows))

    net = PixelMotionNet(config).to(device)
    if initial is not None:
        state = initial.net.state_dict()
        net.load_state_dict(widen_for_envelope(state, config) if widen else state)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    ema = common.EMA(net, args.ema_decay)
    step = 0
    earlier_seconds = 0.0  # training time of the sessions this run resumes
    if checkpoint is not None:
        try:
            step = common.restore(checkpoint, net, optimizer, ema)
            earlier_seconds = float(checkpoint.get("seconds", last_logged_seconds(args.out)))
        except (ValueError, KeyError, RuntimeError) as error:
            return common.fail(f"the checkpoint '{checkpoint_path}' does not fit this run ({error}).")
    model = common.wrap_ddp(net, runtime)
    generator = torch.Generator().manual_seed(args.seed * 1000 + runtime.rank + step)
    parameters = sum(p.numel() for p in net.parameters())
    log.say(f"pixel prior (widths {list(config.channels)}): {parameters:,} parameters, {len(dataset)} windows from "
            f"{len(set(w['clip'] for w in dataset.windows))} clips, grid {width}x{height}, batch {args.batch}, "
            f"device {device}, steps {step} -> {args.steps}")

    model.train()
    plan = common.StepPlan(runtime, args)

    def save(step: int) -> None:
        common.save_run(checkpoint_path, net, optimizer, ema, config.to_dict(), args, step,
                        extra={"seconds": earlier_seconds + plan.clock.elapsed()})

    recent = deque(maxlen=200)
    views = photos.shape[1]
    best_val = None
    while plan.begin(step, optimizer):
        rows = torch.multinomial(weights, args.batch, replacement=True, generator=generator)
        view = torch.randint(0, views, (args.batch,), generator=generator)
        batch_photos, batch_motions = photos[rows, view], motions[rows, view]  # (B, 3, 2h, 2w), (B, 4 (K-1), h, w)
        if args.paste > 0:
            batch_photos, batch_motions = paste_rectangles(batch_photos, batch_motions, generator, args.paste)
        batch_photos = jitter(batch_photos.float() / 255.0, generator).to(device)
        batch_motions = with_envelope(batch_motions.to(device), config)  # (B, C, h, w)
        loss = diffusion_loss(model, batch_motions, batch_photos, alphas_cumprod, generator)
        common.optimizer_step(optimizer, loss, net.parameters())
        ema.update(net)
        step += 1
        recent.append(float(loss.detach()))

        if step % args.log_every == 0 or step == 1:
            log.write(common.round_floats({"step": step, "loss": float(np.mean(recent)), "lr": plan.lr,
                                           "seconds": plan.elapsed}))
        if runtime.is_main and step % args.val_every == 0 and val_photos is not None:
            val = validation_loss(net, val_photos, val_motions, alphas_cumprod)
            log.write(common.round_floats({"step": step, "val_v_mse": val}))
        if runtime.is_main and step % args.save_every == 0:
            save(step)
    seconds = plan.end(step, log)

    if runtime.is_main:
        save(step)
        ema.copy_to(net)
        best_val = validation_loss(net, val_photos, val_motions, alphas_cumprod)
        training = {"stage": "pixel", "command": command, "steps": step, "batch": args.batch * runtime.world_size,
                    "lr": args.lr, "ema_decay": args.ema_decay, "widths": list(config.channels), "device": device.type,
                    "data": os.path.basename(os.path.normpath(args.data)), "train_windows": len(dataset),
                    "clip_balance": not args.no_clip_balance, "flip": not args.no_flip,
                    "crops": args.crops, "paste": args.paste, "init": args.init, "envelope": config.envelope,
                    "continued_from": initial.training if initial is not None else None,
                    "final_loss_last200": round(float(np.mean(recent)), 6) if recent else None,
                    "val_v_mse": common.rounded(best_val), "seconds": round(earlier_seconds + seconds, 1),
                    "resumed_after_seconds": round(earlier_seconds, 1)}
        path = save_pixel_model(os.path.join(args.out, WEIGHTS_NAME),
                                PixelMotionModel(net, dataset.scales, config, training))
        log.done(step, path, {"val_v_mse": training["val_v_mse"]}, f"EMA weights; validation v-MSE {training['val_v_mse']}")
    common.cleanup(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
