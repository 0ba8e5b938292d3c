"""Train the learned frame renderer (app/render/net.py) on frame pairs (app/data/pairs.py).

A plain loop in the manner of nanoGPT, readable top to bottom:

    python -m app train renderer --data PAIRS_DIR --out RUN_DIR [--steps N] [--batch B] [--lr LR]
        [--size 128x80] [--device auto|cpu|cuda] [--resume] [--time-limit SECONDS]
    python -m app.train.renderer ...                       (the same)
    torchrun --nproc_per_node 8 -m app.train.renderer ...  (data-parallel)

Loss: L1 + multi-scale gradient loss (L1 between the finite differences of prediction and truth at
full, 1/2 and 1/4 resolution) + ssim_weight * (1 - SSIM). No pretrained features anywhere.
Random crops of --size from the 'train' split, flips; bf16 autocast on CUDA.

RUN_DIR gets log.jsonl (one JSON object per logged step), checkpoint.pt (model, optimizer, step;
--resume continues from it) and, at the end, renderer.safetensors (fp16) for app/render/frames.py.
With WORLD_SIZE > 1 (torchrun) the process group is NCCL on CUDA and Gloo on CPU, each rank sees
its share of the data through a DistributedSampler, and only rank 0 logs and saves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from app.arguments import parse_size
from app.render.net import DEFAULT_CONFIG, LearnedRenderer, save_renderer
from app.train.common import CHECKPOINT_NAME, learning_rate, load_checkpoint, save_checkpoint

LOG_NAME = "log.jsonl"
WEIGHTS_NAME = "renderer.safetensors"


# --- loss ----------------------------------------------------------------------------------------


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Mean L1 between horizontal and vertical finite differences, at full, 1/2, 1/4 resolution."""
    total = prediction.new_zeros(())
    for scale in range(scales):
        if scale > 0:
            prediction, target = F.avg_pool2d(prediction, 2), F.avg_pool2d(target, 2)
        if min(prediction.shape[2:]) < 2:
            break
        difference = prediction - target
        total = total + (difference[:, :, :, 1:] - difference[:, :, :, :-1]).abs().mean() \
            + (difference[:, :, 1:] - difference[:, :, :-1]).abs().mean()
    return total / scales


def renderer_loss(prediction: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> dict:
    """{'loss', 'l1', 'grad', 'ssim'}: the total and its parts, computed in float32."""
    from app.eval.render_eval import ssim

    prediction, target = prediction.float(), target.float()
    l1 = (prediction - target).abs().mean()
    grad = gradient_loss(prediction, target)
    loss = l1 + grad
    parts = {"l1": l1, "grad": grad}
    if ssim_weight > 0:
        ssim_value = ssim(prediction, target).mean()
        loss = loss + ssim_weight * (1 - ssim_value)
        parts["ssim"] = ssim_value
    return {"loss": loss, **parts}


def make_optimizer(model: LearnedRenderer, lr: float) -> torch.optim.Optimizer:
    """AdamW; no weight decay on the importance scale alpha."""
    weights = [parameter for name, parameter in model.named_parameters() if name != "alpha"]
    return torch.optim.AdamW([{"params": weights, "weight_decay": 1e-4},
                              {"params": [model.alpha], "weight_decay": 0.0}], lr=lr)


def elapsed_fraction(step: int, total_steps: int, elapsed: float, time_limit: float | None) -> float:
    """How far training is, 0..1: by steps, or by time when a time limit comes first."""
    by_steps = step / max(1, total_steps)
    return max(by_steps, elapsed / time_limit) if time_limit else by_steps


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app train renderer",
                                     description="Train the learned frame renderer on frame pairs.")
    parser.add_argument("--data", required=True, help="pairs folder (python -m app.data.pairs)")
    parser.add_argument("--out", required=True, help="run folder: log, checkpoint, weights")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps in all (default 600)")
    parser.add_argument("--batch", type=int, default=8, help="pairs per step and process (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 5%% of --steps, at most 200)")
    parser.add_argument("--size", type=parse_size, default=(128, 80), help="training crop WxH (default 128x80)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    parser.add_argument("--ssim-weight", type=float, default=0.0, help="weight of the 1 - SSIM term")
    parser.add_argument("--channels", default=",".join(str(c) for c in DEFAULT_CONFIG["channels"]),
                        help="encoder channels at full, 1/2, 1/4 resolution (default 32,48,64)")
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes per rank")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="stop (and save) after this many seconds of training; the learning "
                             "rate then decays over this time if it comes before --steps")
    parser.add_argument("--seed", type=int, default=0)
    return parser


# --- training ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    from app.data.pairs import PairDataset
    from app.render.frames import resolve_device

    args = build_parser().parse_args(argv)

    # Distributed setup (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK).
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world_size > 1
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if distributed:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    torch.manual_seed(args.seed + rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # Data: random crops of the training split only.
    try:
        dataset = PairDataset(args.data, "train", augment=True, crop=args.size)
        if len(dataset) == 0:
            raise ValueError(f"The pairs folder '{args.data}' has no training pairs.")
        channels = [int(c) for c in args.channels.split(",")]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sampler = torch.utils.data.DistributedSampler(dataset, seed=args.seed) if distributed else None
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch, shuffle=sampler is None, sampler=sampler, drop_last=len(dataset) >= args.batch,
        num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)

    # Model, optimizer, and the checkpoint to resume from.
    config = {**DEFAULT_CONFIG, "channels": channels}
    model = LearnedRenderer(config).to(device)
    optimizer = make_optimizer(model, args.lr)
    step = 0
    checkpoint_path = os.path.join(args.out, CHECKPOINT_NAME)
    if args.resume:
        try:
            checkpoint = load_checkpoint(checkpoint_path, device)
            model = LearnedRenderer(checkpoint["config"]).to(device)
            model.load_state_dict(checkpoint["model"])
        except (ValueError, KeyError, RuntimeError, TypeError) as error:
            fits = isinstance(error, ValueError)
            print(f"error: {error if fits else f'--resume: {checkpoint_path!r} does not fit the renderer.'}",
                  file=sys.stderr)
            return 2
        optimizer = make_optimizer(model, args.lr)
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = int(checkpoint["step"])
    raw_model = model
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    warmup = args.warmup if args.warmup is not None else max(1, min(200, args.steps // 20))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    if is_main:
        os.makedirs(args.out, exist_ok=True)
        print(f"renderer: {sum(p.numel() for p in raw_model.parameters()):,} parameters, {len(dataset)} training pairs "
              f"from {len(dataset.clips)} clips, crops {args.size[0]}x{args.size[1]}, batch {args.batch} x {world_size}, "
              f"device {device}, steps {step} -> {args.steps}")

    def save():
        save_checkpoint(checkpoint_path, {"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                                          "step": step, "config": raw_model.config, "args": vars(args)})

    # The loop.
    model.train()
    began = time.perf_counter()
    epoch = 0
    running = None  # smoothed loss for the console
    done = False
    while not done:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for batch in loader:
            # Where are we? (Ranks share the slowest clock, so all stop at the same step.)
            elapsed = time.perf_counter() - began
            if distributed:
                clock = torch.tensor(elapsed, device=device)
                dist.all_reduce(clock, op=dist.ReduceOp.MAX)
                elapsed = float(clock)
            if step >= args.steps or (args.time_limit is not None and elapsed > args.time_limit):
                done = True
                break
            progress = elapsed_fraction(step, args.steps, elapsed, args.time_limit)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, args.lr, warmup, progress)

            image0 = batch["image0"].to(device, non_blocking=True)  # (B, 3, h, w)
            target = batch["image_t"].to(device, non_blocking=True)
            flow = batch["flow"].to(device, non_blocking=True)  # (B, 2, h, w)
            weight = batch["weight"].to(device, non_blocking=True)  # (B, 1, h, w)
            with autocast:
                prediction = model(image0, flow, weight)
            losses = renderer_loss(prediction, target, args.ssim_weight)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1

            if is_main and (step % args.log_every == 0 or step == args.steps or step == 1):
                record = {"step": step, **{k: round(float(v.detach()), 6) for k, v in losses.items()},
                          "lr": optimizer.param_groups[0]["lr"], "alpha": round(float(raw_model.alpha.detach()), 4),
                          "seconds": round(time.perf_counter() - began, 1)}
                running = record["loss"] if running is None else 0.8 * running + 0.2 * record["loss"]
                with open(os.path.join(args.out, LOG_NAME), "a", encoding="utf-8") as log:
                    log.write(json.dumps(record) + "\n")
                print(f"step {step:6d}  loss {record['loss']:.4f} (avg {running:.4f})  l1 {record['l1']:.4f}  "
                      f"grad {record['grad']:.4f}  alpha {record['alpha']:.3f}  {record['seconds']:.0f}s", flush=True)
            if is_main and step % args.save_every == 0:
                save()
        epoch += 1
    if is_main and step < args.steps:
        print(f"Time limit of {args.time_limit:g} s reached at step {step}.")

    if is_main:
        save()
        meta = {"steps": step, "batch": args.batch * world_size, "crop": f"{args.size[0]}x{args.size[1]}",
                "lr": args.lr, "ssim_weight": args.ssim_weight, "device": str(device.type),
                "data": os.path.basename(os.path.normpath(args.data)), "clips": dataset.clips,
                "final_loss_smoothed": round(running, 5) if running is not None else None}
        save_renderer(os.path.join(args.out, WEIGHTS_NAME), raw_model, meta)
        print(f"Wrote {os.path.join(args.out, WEIGHTS_NAME)} after {step} steps.")
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
