"""Train the motion envelope of a pixel motion model (app/diffusion/envelope.py), top to bottom.

    python -m app train envelope --data DATASET_DIR --model PIXEL_MODEL --out RUN_DIR [--steps N]
        [--batch B] [--lr LR] [--crops N] [--time-limit SECONDS] [--device auto|cpu|cuda]

Data: the same views as `train pixel` (every training window, its mirror image and --crops random
crops; app.train.pixel.prepare_windows), at the grid of --model and normalized with its scales.
Target: log(band power + EPS) of every band at every grid pixel. Windows are drawn with weight
1 / (windows of their clip). Loss: mean_power_loss (minimal at the mean power). Validation: the L1
of the log power on the validation windows (a factor of e off costs 1 at any level), beside a
baseline that predicts every training pixel's mean log power (a photo-blind envelope).

Writes RUN_DIR/motion_model.safetensors: the --model pixel model with the trained envelope attached
(predict_motion then rescales its samples to the envelope), and log.jsonl. It trains in minutes on
one CPU core, so it has no checkpoint to resume: rerun it.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from app.train import common

WEIGHTS_NAME = "motion_model.safetensors"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app train envelope",
                                     description="Train the motion envelope of a pixel motion model.")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ...)")
    parser.add_argument("--model", required=True, help="the pixel motion model the envelope is for")
    parser.add_argument("--out", required=True, help="run folder: log and motion_model.safetensors")
    parser.add_argument("--channels", type=int, default=32, choices=range(4, 257), metavar="4..256",
                        help="width of the envelope network (default 32)")
    parser.add_argument("--crops", type=int, default=4, choices=range(0, 17), metavar="0..16",
                        help="random crops per window besides the window and its mirror (default 4)")
    parser.add_argument("--val-every", type=int, default=250, help="validation every N steps (default 250)")
    common.add_common_arguments(parser, steps=3000, batch=32, lr=2e-3)
    return parser


def mean_power_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """exp(y) - P y for predicted log power y and observed power P = exp(target) (Poisson deviance up
    to a constant): minimal where exp(y) is the mean power, not the median an L1 of logs would give,
    so the envelope keeps the strength of the motion that phase-random windows average to."""
    return (predicted.exp() - target.exp() * predicted).mean()


@torch.no_grad()
def validation_error(net, photos, targets) -> float | None:
    """Mean L1 of the log band power over validation windows (first view)."""
    if photos is None or len(photos) == 0:
        return None
    net.eval()
    device = next(net.parameters()).device
    predicted = net(photos[:, 0].to(device).float() / 255.0)
    net.train()
    return float((predicted - targets[:, 0].to(device)).abs().mean())


def main(argv=None) -> int:
    from app.data.dataset import SpectralDataset
    from app.data.extract import clip_weights
    from app.diffusion.envelope import EnvelopeConfig, EnvelopeNet, band_log_power
    from app.diffusion.pixel import load_pixel_model, save_pixel_model
    from app.train.pixel import jitter, prepare_windows

    args = build_parser().parse_args(argv)
    command = common.command_line("python -m app train envelope", argv)
    try:
        runtime = common.setup_runtime(args.device, args.seed, args.threads)
        model = load_pixel_model(args.model, "cpu")
        dataset = SpectralDataset(args.data, "train", augment=False)
        validation = SpectralDataset(args.data, "val", augment=False)
        if len(dataset) == 0:
            raise ValueError(f"The dataset '{args.data}' has no training windows.")
        if not np.allclose(model.scales, dataset.scales, rtol=0.02):
            raise ValueError(f"'{args.model}' was trained with other band scales than '{args.data}' has.")
    except ValueError as error:
        return common.fail(error)
    device = runtime.device
    config = model.config
    log = common.RunLog(args.out, runtime.is_main)
    log.say(f"Preparing {len(dataset)} training and {len(validation)} validation windows at "
            f"{config.width}x{config.height} ({args.crops} crops each).")
    photos, motions = prepare_windows(dataset, config, crops=args.crops, seed=args.seed)
    targets = band_log_power(motions.flatten(0, 1)).reshape(*motions.shape[:2], -1, config.height, config.width)
    val_photos, val_targets = None, None
    if len(validation):
        val_photos, val_motions = prepare_windows(validation, config, flip=False)
        val_targets = band_log_power(val_motions.flatten(0, 1)).reshape(*val_motions.shape[:2], -1,
                                                                         config.height, config.width)
    weights = torch.from_numpy(clip_weights(dataset.windows))

    net = EnvelopeNet(EnvelopeConfig(num_bands=config.num_bands, channels=args.channels)).to(device)
    with torch.no_grad():  # start from the mean log power of each band: the photo-blind answer
        net.head.bias.copy_(targets.mean(dim=(0, 1, 3, 4)))
    baseline = None
    if val_targets is not None:  # every training pixel's mean log power, per band and grid pixel
        blind = targets.mean(dim=(0, 1))[None]
        baseline = float((blind - val_targets[:, 0]).abs().mean())
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    log.say(f"envelope: {sum(p.numel() for p in net.parameters()):,} parameters; validation L1 of the "
            f"photo-blind envelope {baseline if baseline is None else round(baseline, 4)}")

    views = photos.shape[1]
    done = [0]  # steps taken so far in this run

    def take_step() -> dict:
        rows = torch.multinomial(weights, args.batch, replacement=True, generator=generator)
        view = torch.randint(0, views, (args.batch,), generator=generator)
        batch_photos = jitter(photos[rows, view].float() / 255.0, generator).to(device)  # (B, 3, 2h, 2w)
        loss = mean_power_loss(net(batch_photos), targets[rows, view].to(device))
        common.optimizer_step(optimizer, loss, net.parameters())
        done[0] += 1
        if done[0] % args.val_every == 0 and val_photos is not None:
            log.write(common.round_floats({"step": done[0], "val_l1": validation_error(net, val_photos, val_targets),
                                           "val_l1_photo_blind": baseline}))
        return {"loss": loss}

    net.train()
    step, recent, seconds = common.run_steps(runtime, args, optimizer, 0, take_step, log, save=lambda _: None, keep=100)
    final = validation_error(net, val_photos, val_targets)
    model.envelope = net.cpu().eval()
    model.training = dict(model.training, envelope={
        "command": command, "steps": step, "batch": args.batch, "lr": args.lr, "crops": args.crops,
        "channels": args.channels, "seconds": round(seconds, 1),
        "final_loss_last100": round(float(np.mean([r["loss"] for r in recent])), 6) if recent else None,
        "val_l1": None if final is None else round(final, 6),
        "val_l1_photo_blind": None if baseline is None else round(baseline, 6)})
    path = save_pixel_model(os.path.join(args.out, WEIGHTS_NAME), model)
    log.write({"step": step, "event": "done", "val_l1": model.training["envelope"]["val_l1"]})
    log.say(f"Wrote {path} after {step} steps (validation L1 {model.training['envelope']['val_l1']}, "
            f"photo-blind {model.training['envelope']['val_l1_photo_blind']}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
