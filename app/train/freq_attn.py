"""Stage 2 of the motion prior: train only the frequency attention, on all K slices of each example.

A plain loop in the manner of nanoGPT, readable top to bottom:

    python -m app train freq-attn --data DATASET_DIR --model STAGE1_RUN/motion_model.safetensors
        --out RUN_DIR [--steps N] [--batch B] [--lr LR] [--no-flip] [--device auto|cpu|cuda]
        [--resume] [--time-limit SECONDS] [--ema-decay 0.999]
    python -m app.train.freq_attn ...                        (the same)
    torchrun --nproc_per_node 8 -m app.train.freq_attn ...   (data-parallel)

The stage-1 motion model is loaded; its VAE and the U-Net's base stay frozen (unet.freeze_base()),
the frequency attention layers are switched on and are the only parameters trained. A batch is B
whole examples: their K latent slices as (B*K, 4, h, w) rows, one timestep and one condition drop
(p = 0.1) per example repeated over its K slices, as in sampling, where all slices share the step.
Latents come from the same cache as stage 1 (app/train/ldm.py: encoded once, with flipped copies).
eps-prediction MSE, AdamW, warm-up and cosine decay, bf16 autocast on CUDA, EMA.

Writes RUN_DIR/motion_model.safetensors (the final model: the stage-1 model with the EMA frequency
attention weights; training info of every stage), log.jsonl and checkpoint.pt (--resume).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np
import torch

from app.train import common
from app.train.ldm import add_data_arguments, diffusion_loss, latent_batches, validation_cache, validation_loss

WEIGHTS_NAME = "motion_model.safetensors"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app train freq-attn",
                                     description="Stage 2: train the frequency attention on whole examples.")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ...)")
    parser.add_argument("--model", required=True, help="stage-1 motion model (STAGE1_RUN/motion_model.safetensors)")
    parser.add_argument("--out", required=True, help="run folder: log, checkpoint, motion_model.safetensors")
    add_data_arguments(parser)
    common.add_common_arguments(parser, steps=5000, batch=4, lr=2e-4, ema_decay=0.999)
    return parser


def check_model_fits_data(model, dataset) -> None:
    """ValueError when the dataset's size, bands or loop length differ from the model's."""
    settings = dataset.index["settings"]
    data = (int(settings["width"]), int(settings["height"]), len(dataset.scales), int(settings["num_frames"]))
    expected = (model.width, model.height, model.num_bands, model.config.num_frames)
    if data != expected:
        raise ValueError(f"The dataset ({data[0]}x{data[1]}, {data[2]} bands, {data[3]} frames) does not match "
                         f"the model ({expected[0]}x{expected[1]}, {expected[2]} bands, {expected[3]} frames).")


def main(argv=None) -> int:
    from app.diffusion.weights import load_motion_model, save_motion_model

    args = build_parser().parse_args(argv)
    command = common.command_line("python -m app train freq-attn", argv)
    try:
        runtime = common.setup_runtime(args.device, args.seed, args.threads)
        motion_model = load_motion_model(args.model, device=runtime.device)
        dataset = common.training_windows(args.data)
        check_model_fits_data(motion_model, dataset)
        checkpoint = common.resume_checkpoint(args, runtime)
    except ValueError as error:
        return common.fail(error)
    device = runtime.device
    log = common.RunLog(args.out, runtime.is_main)
    vae, unet = motion_model.vae, motion_model.unet
    vae.requires_grad_(False)
    alphas_cumprod = motion_model.alphas_cumprod.to(device)
    num_bands = motion_model.num_bands

    # Only the frequency attention trains (the base is frozen, the attention switched on).
    unet.freeze_base()
    unet.train()
    attention = unet.frequency_attention_parameters()
    optimizer = torch.optim.AdamW(attention, lr=args.lr, weight_decay=0.0)
    ema = common.EMA(unet, args.ema_decay)  # the trainable (attention) parameters only
    step = 0 if checkpoint is None else common.restore(checkpoint, unet, optimizer, ema)
    checkpoint_path = os.path.join(args.out, common.CHECKPOINT_NAME)
    model = common.wrap_ddp(unet, runtime)
    generator = torch.Generator().manual_seed(args.seed * 1000 + runtime.rank + step)

    batches = latent_batches(args, dataset, vae, runtime, generator, all_bands=True, log=log)
    val_cache = validation_cache(args, vae, device) if runtime.is_main else None
    val_before = validation_loss(unet, val_cache, alphas_cumprod) if runtime.is_main and step == 0 else None
    log.say(f"freq-attn stage 2: {sum(p.numel() for p in attention):,} trainable parameters (base frozen), "
            f"{len(dataset)} training windows, batch {args.batch} x {runtime.world_size} examples x {num_bands} "
            f"bands, device {device}, steps {step} -> {args.steps}")

    config = {"unet": unet.config.to_dict(), "model": args.model}
    save = functools.partial(common.save_run, checkpoint_path, unet, optimizer, ema, config, args)  # save(step)

    def take_step() -> dict:
        latents, images, bands = next(batches)  # (B*K, 4, h, w), (B, 3, H, W), (B*K,)
        loss = diffusion_loss(model, latents, images, bands, alphas_cumprod, generator, shared_step=True)
        common.optimizer_step(optimizer, loss, attention)
        ema.update(unet)
        return {"loss": loss}

    step, recent, seconds = common.run_steps(runtime, args, optimizer, step, take_step, log, save, keep=100)

    # The end: checkpoint, then the final motion model with the EMA attention weights.
    if runtime.is_main:
        save(step)
        ema.copy_to(unet)
        val_after = validation_loss(unet, val_cache, alphas_cumprod)
        training = dict(motion_model.training)
        training["stage"] = "freq-attn"
        training["freq_attn"] = {
            "command": command, "steps": step, "batch_examples": args.batch * runtime.world_size,
            "lr": args.lr, "ema_decay": args.ema_decay, "flip": not args.no_flip, "device": device.type,
            "data": os.path.basename(os.path.normpath(args.data)), "train_windows": len(dataset),
            "final_loss_last100": round(float(np.mean([r["loss"] for r in recent])), 6) if recent else None,
            "val_eps_mse_before": common.rounded(val_before), "val_eps_mse": common.rounded(val_after),
            "seconds": round(seconds, 1)}
        motion_model.training = training
        path = save_motion_model(os.path.join(args.out, WEIGHTS_NAME), motion_model)
        figures = {key: training["freq_attn"][key] for key in ("val_eps_mse_before", "val_eps_mse")}
        log.done(step, path, figures, "validation eps-MSE {val_eps_mse_before} -> {val_eps_mse}".format(**figures))
    common.cleanup(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
