"""Shared plumbing of the motion-model training scripts (vae.py, ldm.py, freq_attn.py).

The scripts stay readable top to bottom; what they have in common lives here, as small functions:

    add_common_arguments(parser, steps=, batch=, lr=)   --steps --batch --lr --warmup --device
                                                        --resume --time-limit --seed --log-every
                                                        --save-every --threads --ema-decay
    setup_runtime(device_name, seed, threads) -> Runtime   torchrun env (WORLD_SIZE, RANK, LOCAL_RANK):
                                                        NCCL on CUDA, Gloo on CPU; single process otherwise
    training_windows(data_dir, augment=, seed=)         the dataset's 'train' split; ValueError when empty
    make_loader(dataset, batch, runtime, seed, workers) -> (DataLoader, DistributedSampler | None)
    endless(loader, sampler)                            batches forever, one epoch after another
    wrap_ddp(model, runtime)                            DistributedDataParallel when distributed
    autocast(device)                                    bf16 autocast on CUDA, a no-op on CPU
    EMA(model, decay)                                   exponential moving average of trainable parameters
    save_checkpoint(path, state) / load_checkpoint(path, device)   atomic torch.save / torch.load
    save_run(path, model, optimizer, ema, config, args, step)   a run's checkpoint
    resume_checkpoint(args, runtime) -> dict | None     --resume: RUN_DIR/checkpoint.pt
    restore(checkpoint, model, optimizer, ema) -> step  its weights, optimizer and EMA back in a run
    fail(error) -> 2                                    one line on stderr: a run that could not start
    RunLog(run_dir, is_main)                            RUN_DIR/log.jsonl + stdout, rank 0 only;
                                                        .done(step, path, figures, remark) at the end
    Clock(runtime, time_limit)                          elapsed seconds agreed by all ranks, stop check
    learning_rate(step, peak, warmup, progress)         linear warm-up, cosine decay to 10 %
    StepPlan(runtime, args)                             .begin(step, optimizer): stop or set this
                                                        step's learning rate; .finish(step, record,
                                                        log, save): log and checkpoint when due;
                                                        .end(step, log) -> seconds
    optimizer_step(optimizer, loss, parameters)         backward, gradient norm clipped to 1, step
    run_steps(runtime, args, optimizer, step, take_step, log, save, keep)
                                                        the loop: take_step() until the plan stops ->
                                                        (steps done, last `keep` losses, seconds)

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
from collections import deque
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


def training_windows(data_dir: str, augment: bool = False, seed: int = 0):
    """The 'train' split of a dataset folder as a SpectralDataset; ValueError when it has none."""
    from app.data.dataset import SpectralDataset

    dataset = SpectralDataset(data_dir, "train", augment=augment, seed=seed)
    if len(dataset) == 0:
        raise ValueError(f"The dataset '{data_dir}' has no training windows.")
    return dataset


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


def save_run(path: str, model: torch.nn.Module, optimizer, ema: EMA | None, config, args, step: int,
             extra: dict | None = None) -> None:
    """Checkpoint a run: the weights, their EMA (when the run keeps one), the optimizer's state, the
    steps done, the model's config, the run's arguments and any `extra` entries."""
    state = {"model": model.state_dict()}
    if ema is not None:
        state["ema"] = ema.state_dict()
    state.update(optimizer=optimizer.state_dict(), step=step, config=config, args=vars(args), **(extra or {}))
    save_checkpoint(path, state)


def resume_checkpoint(args, runtime: Runtime) -> dict | None:
    """With --resume, the run's RUN_DIR/checkpoint.pt; without, None. ValueError with one sentence
    (and the process group ended) when it is missing or damaged."""
    if not args.resume:
        return None
    try:
        return load_checkpoint(os.path.join(args.out, CHECKPOINT_NAME), runtime.device)
    except ValueError:
        cleanup(runtime)
        raise


def restore(checkpoint: dict, model: torch.nn.Module, optimizer, ema: EMA | None = None) -> int:
    """Put a checkpoint's weights, optimizer state and EMA back into a run; the steps it had done."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if ema is not None:
        ema.load_state_dict(checkpoint["ema"])
    return int(checkpoint["step"])


def fail(error) -> int:
    """Say what went wrong in one line on stderr; the exit status of a run that could not start: 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


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

    def done(self, step: int, path: str, figures: dict, remark: str) -> None:
        """The run's last record (its final figures) and a sentence saying what it wrote."""
        self.write({"step": step, "event": "done", **figures})
        self.say(f"Wrote {path} after {step} steps ({remark}).")


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


class StepPlan:
    """The steps of a run: when it stops (--steps done, or --time-limit passed on the slowest rank)
    and each step's learning rate (warm-up, then cosine decay over the steps or the time limit)."""

    def __init__(self, runtime: Runtime, args):
        self.args = args
        self.is_main = runtime.is_main
        self.warmup = warmup_steps(args)
        self.clock = Clock(runtime, args.time_limit)
        self.elapsed = 0.0  # seconds of the run when the current step began
        self.lr = 0.0  # the current step's learning rate

    def begin(self, step: int, optimizer: torch.optim.Optimizer) -> bool:
        """Before step `step` (0-based): False when the run is over, else True with the step's
        learning rate set on the optimizer (and in self.lr)."""
        self.elapsed = self.clock.elapsed()
        if step >= self.args.steps or self.clock.out_of_time(self.elapsed):
            return False
        progress = self.clock.progress(step, self.args.steps, self.elapsed)
        self.lr = learning_rate(step, self.args.lr, self.warmup, progress)
        set_learning_rate(optimizer, self.lr)
        return True

    def finish(self, step: int, record: dict, log: RunLog, save) -> None:
        """After a step (`step` steps done): log the record with the learning rate and the seconds
        every --log-every steps, the first and the last; save(step) every --save-every steps."""
        if step % self.args.log_every == 0 or step == 1 or step == self.args.steps:
            log.write(round_floats({"step": step, **record, "lr": self.lr, "seconds": self.elapsed}))
        if self.is_main and step % self.args.save_every == 0:
            save(step)

    def end(self, step: int, log: RunLog) -> float:
        """After the loop: say so when the time limit ended the run early; the run's seconds (every
        rank takes part in the clock)."""
        if step < self.args.steps:
            log.say(f"Time limit of {self.args.time_limit:g} s reached at step {step}.")
        return self.clock.elapsed()


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters) -> None:
    """Backpropagate the loss, clip the gradient norm of `parameters` to 1, and step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()


def run_steps(runtime: Runtime, args, optimizer: torch.optim.Optimizer, step: int, take_step, log: RunLog,
              save, keep: int) -> tuple[int, list[dict], float]:
    """The training loop: take_step() until the run is over (StepPlan: --steps or --time-limit),
    the learning rate set before each step, its losses (name -> tensor) logged and the run
    checkpointed (save(step)) when due. Returns the steps done (counting those before `step`), the
    losses of the last `keep` steps (name -> float) and the run's seconds."""
    plan = StepPlan(runtime, args)
    recent = deque(maxlen=keep)
    while plan.begin(step, optimizer):
        losses = take_step()
        step += 1
        recent.append({name: float(value.detach()) for name, value in losses.items()})
        plan.finish(step, losses, log, save)
    return step, list(recent), plan.end(step, log)


def rounded(value: float | None, digits: int = 6) -> float | None:
    """A figure for the training record: rounded, or None when there is none."""
    return None if value is None else round(value, digits)


def round_floats(record: dict, digits: int = 6) -> dict:
    """Tensors and floats rounded for the log."""
    out = {}
    for key, value in record.items():
        if isinstance(value, torch.Tensor):
            value = float(value.detach())
        out[key] = round(value, digits) if isinstance(value, float) else value
    return out
