"""The one training loop (nanoGPT-style): read it top to bottom.

The caller gives a model whose forward returns `.loss`, and `batch_at(step) -> (inputs, tokens)`: the batch of a
global step is a pure function of the step (and the data seed), so a resumed run sees exactly the batches an
uninterrupted one would. Checkpoints hold the model, the optimizer, the step and the RNG state; with the same seed
and thread count a run and its resumed twin end with identical weights on CPU.
"""
from __future__ import annotations

import functools
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

Batch = tuple[dict[str, torch.Tensor], int]  # model inputs, tokens it holds (for tokens/s)


@functools.lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int | str, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return tuple(order)


def batch_indices(n: int, batch_size: int, seed: int | str, step: int) -> list[int]:
    """Rows of global step `step`'s batch: the data is read in epochs, each its own seeded permutation, so a batch
    is a pure function of the step; one that crosses an epoch's end takes the rest of that epoch and the start of
    the next (never a row twice within an epoch)."""
    start = step * batch_size
    return [_epoch_order(n, seed, pos // n)[pos % n] for pos in range(start, start + min(batch_size, n))]


@dataclass
class TrainConfig:
    out_dir: str
    max_steps: int = 1000
    max_minutes: float = 0.0  # >0: also stop (with a checkpoint) after this much wall time; the LR decays by then
    lr: float = 3e-4
    min_lr: float = 3e-5  # cosine decay ends here
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    seed: int = 0
    device: str = "auto"  # auto = cuda when present, else cpu
    threads: int = 0  # torch CPU threads; 0 = torch's default
    lr_scale: dict = field(default_factory=dict)  # parameter-name substring -> LR multiplier (new layers)


def lr_at(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to min_lr by max_steps, or by max_minutes when that comes first (a time
    budget on a busy machine: the decay follows the clock, so that run is not bit-reproducible)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.max_minutes:
        progress = max(progress, min(1.0, elapsed_s / (cfg.max_minutes * 60)))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train(cfg: TrainConfig, model: torch.nn.Module, batch_at: Callable[[int], Batch],
          evaluate: Callable[[torch.nn.Module, int], dict] | None = None,
          log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> dict[str, Any]:
    """Train until cfg.max_steps (or cfg.max_minutes); resume from out_dir/ckpt.pt when it exists."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = pick_device(cfg.device)
    model.to(device)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    groups: dict[tuple[bool, float], list] = {}
    for name, p in named:  # no weight decay on biases and LayerNorm; new parts may learn faster
        scale = next((v for k, v in cfg.lr_scale.items() if k in name), 1.0)
        groups.setdefault((p.dim() >= 2, scale), []).append(p)
    optimizer = torch.optim.AdamW([{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0,
                                    "lr_scale": scale} for (decay, scale), ps in sorted(groups.items())],
                                  lr=cfg.lr)
    step, history = 0, []
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"])
        step, history = ckpt["step"], ckpt["history"]
        log(f"resumed from {ckpt_path} at step {step}")
    trainable = sum(p.numel() for p in params)
    log(f"training {trainable / 1e6:.1f}M parameters on {device} for {cfg.max_steps} steps")

    def save() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                    "step": step, "history": history, "config": asdict(cfg)}, tmp)
        os.replace(tmp, ckpt_path)

    model.train()
    t0, start_step, tokens, loss_sum, loss_n = time.perf_counter(), step, 0, 0.0, 0
    spent = next((h["elapsed_s"] for h in reversed(history) if "elapsed_s" in h), 0.0)  # runs before a resume
    stopped = "max_steps"
    while step < cfg.max_steps:
        lr = lr_at(step, cfg, spent + time.perf_counter() - t0)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        inputs, n_tokens = batch_at(step)
        loss = model(**{k: v.to(device) for k, v in inputs.items()}).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        step += 1
        tokens += n_tokens
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        elapsed = time.perf_counter() - t0
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            left = (cfg.max_steps - step) * elapsed / (step - start_step)
            if cfg.max_minutes:
                left = min(left, cfg.max_minutes * 60 - spent - elapsed)
            history.append({"step": step, "loss": loss_sum / loss_n, "lr": lr, "elapsed_s": round(spent + elapsed, 1)})
            log(f"step {step}/{cfg.max_steps} loss {loss_sum / loss_n:.4f} lr {lr:.2e} "
                f"{tokens / elapsed:.0f} tok/s {(spent + elapsed) / 60:.1f} min ETA {max(0.0, left) / 60:.1f} min")
            loss_sum, loss_n = 0.0, 0
        if evaluate and cfg.eval_every and step % cfg.eval_every == 0:
            model.eval()
            history.append({"step": step, **evaluate(model, step)})
            log(f"eval at step {step}: {history[-1]}")
            model.train()
        if step % cfg.checkpoint_every == 0:
            save()
        if cfg.max_minutes and spent + elapsed > cfg.max_minutes * 60:
            stopped = "max_minutes"
            break
    save()
    model.eval()
    result = {"steps": step, "stopped": stopped, "history": history,
              "train_seconds": round(time.perf_counter() - t0, 1)}
    if evaluate:
        result["eval"] = evaluate(model, step)
        log(f"final eval: {result['eval']}")
    return result
