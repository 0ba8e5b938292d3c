"""Shared plumbing of the motion-model training scripts (vae.py, ldm.py, freq_attn.py).

The scripts stay readable top to bottom; what they have in common lives here, as small functions:

    add_common_arguments(parser, steps=, batch=, lr=)   --steps --batch --lr --warmup --device
                                                        --resume --time-limit --seed --log-every
                                                        --save-every --threads --ema-decay
    setup_runtime(device_name, seed, threads) -> Runtime   torchrun env (WORLD_SIZE, RANK, LOCAL_RANK):
                                                        NCCL on CUDA, Gloo on CPU; single process otherwise
    make_loader(dataset, batch, runtime, seed, workers) -> (DataLoader, DistributedSampler | None)
    endless(loader, sampler)                            batches forever, one epoch after another
    wrap_ddp(model, runtime)                            DistributedDataParallel when distributed
    autocast(device)                                    bf16 autocast on CUDA, a no-op on CPU
    EMA(model, decay)                                   exponential moving average of trainable parameters
    save_checkpoint(path, state) / load_checkpoint(path, device)   atomic torch.save / torch.load
    RunLog(run_dir, is_main)                            RUN_DIR/log.jsonl + stdout, rank 0 only
    Clock(runtime, time_limit)                          elapsed seconds agreed by all ranks, stop check
    learning_rate(step, peak, warmup, progress)         linear warm-up, cosine decay to 10 %

Checkpoints (RUN_DIR/checkpoint.pt) are plain dicts: {"model", "ema", "optimizer", "step",
"config", "args"}; they are written to a temporary file and renamed (app.atomic.atomic_write), so a
run killed while saving keeps its previous checkpoint. --resume continues from one; --steps counts
all steps, so a resumed run stops at the same total. --time-limit stops every rank at the same step
once that many seconds of this run have passed; the scripts then save as at a normal end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import random
import shlex
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from app.atomic import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


# --- command line --------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser, steps: int, batch: int, lr: float,
                         ema_decay: float | None = None) -> None:
    """The options every training script shares."""
    parser.add_argument("--steps", type=int, default=steps, help=f"optimizer steps in all (default {steps})")
    parser.add_argument("--batch", type=int, default=batch, help=f"batch per step and process (default {batch})")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr:g})")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up steps (default: 5%% of --steps, at most 500)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="stop cleanly (checkpoint and weights) after this many seconds; the "
                             "learning rate then decays over this time if it comes before --steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=10, help="log every N steps (default 10)")
    parser.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (default 500)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per process (default: CPU cores / processes on this machine)")
    if ema_decay is not None:
        parser.add_argument("--ema-decay", type=float, default=ema_decay,
                            help=f"EMA decay of the weights that are saved (default {ema_decay:g})")


def command_line(prog: str, argv) -> str:
    """The command as a user would type it (stored with the weights)."""
    return " ".join([prog] + [shlex.quote(str(a)) for a in (sys.argv[1:] if argv is None else argv)])


def warmup_steps(args) -> int:
    return args.warmup if args.warmup is not None else max(1, min(500, args.steps // 20))


# --- processes and devices -----------------------------------------------------------------------


@dataclass
class Runtime:
    """Where this process runs: its device and its place among the torchrun processes."""

    device: torch.device
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto") -> torch.device:
    """torch.device for auto (CUDA when available), cpu or cuda; ValueError with one sentence."""
    from app.device import torch_device

    return torch_device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_runtime(device_name: str = "auto", seed: int = 0, threads: int | None = None) -> Runtime:
    """Read the torchrun environment, pick the device, start the process group, seed per rank."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if world_size > 1 else (device.index or 0))
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // max(1, local_world_size)))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    seed_everything(seed + rank)
    return Runtime(device, world_size, rank, local_rank)


def cleanup(runtime: Runtime) -> None:
    """Wait for every rank, then end the process group (rank 0 may have been saving)."""
    if runtime.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_ddp(model: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    """The model itself, or DistributedDataParallel around it under torchrun."""
    if not runtime.distributed:
        return model
    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; nothing on CPU (float32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --- data ----------------------------------------------------------------------------------------


def make_loader(dataset, batch: int, runtime: Runtime, seed: int = 0, workers: int = 0):
    """(DataLoader, DistributedSampler or None): shuffled; each rank sees its share under torchrun."""
    sampler = (torch.utils.data.DistributedSampler(dataset, num_replicas=runtime.world_size, rank=runtime.rank,
                                                   seed=seed, shuffle=True, drop_last=False)
               if runtime.distributed else None)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=sampler is None, sampler=sampler,
        drop_last=len(dataset) // runtime.world_size >= batch, num_workers=workers,
        pin_memory=runtime.device.type == "cuda", persistent_workers=workers > 0)
    return loader, sampler


def endless(loader, sampler=None):
    """Yield batches forever, epoch after epoch (the sampler reshuffles per epoch)."""
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


# --- weights -------------------------------------------------------------------------------------


class EMA:
    """Exponential moving average of a model's trainable parameters.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) over the n updates so far, so that short
    runs are not dominated by the random initialization.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {name: p.detach().clone().float() for name, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, parameter in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(parameter.detach().float(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrite the model's parameters with the averages."""
        for name, parameter in model.named_parameters():
            if name in self.shadow:
                parameter.copy_(self.shadow[name].to(parameter.dtype))

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            if name in self.shadow:
                self.shadow[name].copy_(value)


def save_checkpoint(path: str, state: dict) -> None:
    """torch.save(state) to path atomically (a temporary file in the same folder, then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str, device) -> dict:
    """The dict save_checkpoint wrote; ValueError with one sentence when it is missing, damaged, or
    holds anything but tensors and plain values (weights_only=True: a pickle never runs code here)."""
    if not os.path.isfile(path):
        raise ValueError(f"--resume: '{path}' does not exist.")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        if isinstance(error, pickle.UnpicklingError) and "global" in str(error).lower():
            raise ValueError(f"--resume: the checkpoint '{path}' holds objects other than tensors and plain "
                             "values; it was not loaded.") from None
        raise ValueError(f"--resume: the checkpoint '{path}' is damaged.") from None
    if not isinstance(checkpoint, dict) or not {"model", "step"} <= set(checkpoint):
        raise ValueError(f"--resume: '{path}' is not a training checkpoint.")
    return checkpoint


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel (or the module itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


# --- progress ------------------------------------------------------------------------------------


class RunLog:
    """One JSON object per logged step in RUN_DIR/log.jsonl (appended, so resumed runs continue it)."""

    def __init__(self, run_dir: str, is_main: bool = True):
        self.path = os.path.join(run_dir, LOG_NAME)
        self.is_main = is_main
        if is_main:
            os.makedirs(run_dir, exist_ok=True)

    def write(self, record: dict) -> None:
        if not self.is_main:
            return
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()),
              flush=True)

    def say(self, text: str) -> None:
        if self.is_main:
            print(text, flush=True)


def read_log(run_dir: str) -> list[dict]:
    """Every record of RUN_DIR/log.jsonl."""
    with open(os.path.join(run_dir, LOG_NAME), encoding="utf-8") as log:
        return [json.loads(line) for line in log if line.strip()]


class Clock:
    """Seconds since this run started, the same on every rank (the slowest rank's clock)."""

    def __init__(self, runtime: Runtime, time_limit: float | None = None):
        self.runtime = runtime
        self.time_limit = time_limit
        self.began = time.perf_counter()

    def elapsed(self) -> float:
        elapsed = time.perf_counter() - self.began
        if self.runtime.distributed:
            clock = torch.tensor(elapsed, dtype=torch.float64,
                                 device=self.runtime.device if self.runtime.device.type == "cuda" else "cpu")
            dist.all_reduce(clock, op=dist.ReduceOp.MAX)
            elapsed = float(clock)
        return elapsed

    def out_of_time(self, elapsed: float) -> bool:
        return self.time_limit is not None and elapsed > self.time_limit

    def progress(self, step: int, total_steps: int, elapsed: float) -> float:
        """How far training is, 0..1: by steps, or by time when the time limit comes first."""
        by_steps = step / max(1, total_steps)
        return max(by_steps, elapsed / self.time_limit) if self.time_limit else by_steps


def learning_rate(step: int, peak: float, warmup: int, progress: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10 % of the peak as progress -> 1."""
    import math

    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, max(0.0, progress))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def round_floats(record: dict, digits: int = 6) -> dict:
    """Tensors and floats rounded for the log."""
    out = {}
    for key, value in record.items():
        if isinstance(value, torch.Tensor):
            value = float(value.detach())
        out[key] = round(value, digits) if isinstance(value, float) else value
    return out
