"""One plain training loop for the transformer family (nanoGPT-style), resumable and seeded.

Data: non-overlapping windows of T+1 tokens of a memory-mapped token stream, visited in a seeded
random order per epoch; window i of step s is a pure function of (seed, s), so a resumed run sees
exactly the batches it would have seen. A run that needs more windows than the corpus holds is an
error unless ``allow_repeat`` (then the epochs are recorded).

AdamW (decay on matrices and embeddings only), warmup + cosine / WSD / constant LR, gradient
accumulation, gradient clipping, bf16 autocast and optional ``torch.compile`` on CUDA,
deterministic kernels on CPU. Validation loss on a fixed held-out set at log-spaced steps.
Checkpoints go to a folder that is not a declared Snakemake output (outputs are deleted before a
rerun), atomically, every ``checkpoint_every`` steps and at the end.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from scaling_atlas.models.transformer import Transformer, TransformerConfig
from scaling_atlas.train import checkpoint
from scaling_atlas.train.spec import (RESUME_FREE, CorpusTooSmall, LMTrainSpec, eval_steps, lr_at,
                                      lr_sequence)


class WindowSampler:
    """Batches of (input, target) windows from a token stream, in a seeded order per epoch."""

    def __init__(self, tokens: np.ndarray, seq_len: int, seed: int, allow_repeat: bool,
                 pin: bool = False):
        self.tokens, self.seq_len, self.seed, self.pin = tokens, seq_len, seed, pin
        self.n_windows = (len(tokens) - 1) // seq_len
        self.allow_repeat = allow_repeat
        self._orders: dict[int, np.ndarray] = {}

    def require(self, n_sequences: int, what: str) -> int:
        """Epochs needed for ``n_sequences`` windows; an error if >1 and repetition is off."""
        epochs = math.ceil(n_sequences / max(1, self.n_windows))
        if epochs > 1 and not self.allow_repeat:
            raise CorpusTooSmall(
                f"{what} needs {n_sequences * self.seq_len:,} training tokens "
                f"({n_sequences:,} windows of {self.seq_len}) but the corpus has "
                f"{self.n_windows * self.seq_len:,}; give a larger corpus or set "
                "corpus.allow_repeat: true (epochs are then recorded)")
        return epochs

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)}
        return self._orders[epoch]

    def batch(self, first_sequence: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = []
        for i in range(first_sequence, first_sequence + size):
            window = self._order(i // self.n_windows)[i % self.n_windows]
            start = int(window) * self.seq_len
            rows.append(np.asarray(self.tokens[start : start + self.seq_len + 1], dtype=np.int64))
        data = torch.from_numpy(np.stack(rows))
        if self.pin:  # page-locked, so the copy to the GPU overlaps the running step
            data = data.pin_memory()
        return data[:, :-1], data[:, 1:]


def validation_batches(tokens: np.ndarray, seq_len: int, eval_tokens: int, batch: int = 64):
    n = min((len(tokens) - 1) // seq_len, max(1, eval_tokens // seq_len))
    if n < 1:
        raise CorpusTooSmall(f"the validation split has {len(tokens)} tokens, fewer than one "
                             f"window of {seq_len + 1}")
    data = torch.from_numpy(np.stack([np.asarray(tokens[i * seq_len : i * seq_len + seq_len + 1],
                                                 dtype=np.int64) for i in range(n)]))
    return [(data[i : i + batch, :-1], data[i : i + batch, 1:]) for i in range(0, n, batch)]


def make_optimizer(model: torch.nn.Module, spec: LMTrainSpec, device: torch.device):
    """AdamW with weight decay on ≥2-D tensors (matrices, embeddings), none on LayerNorms."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": spec.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2),
                             fused=True)  # one kernel per step on CPU and CUDA alike


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (matmuls in bf16, reductions and the loss in float32); none on CPU."""
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext


def loss_function(model: Transformer, spec: LMTrainSpec):
    """The training loss, compiled when asked (compiling ``model`` itself would leave
    ``model.loss`` eager: it calls the uncompiled module)."""
    return torch.compile(model.loss, mode=spec.compile_mode) if spec.compile else model.loss


def training_step(model, loss_fn, optimizer, micro_batches, lr: float, spec: LMTrainSpec,
                  device: torch.device, autocast) -> torch.Tensor:
    """One optimiser step over ``micro_batches`` (gradient accumulation), clipped AdamW.

    Returns the step's mean training loss as a tensor on the device: reading it is left to the
    caller, so a GPU step never waits for the host."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    if device.type == "cuda":  # a new iteration for CUDA graph trees: last step's outputs are dead
        torch.compiler.cudagraph_mark_step_begin()
    step_loss = torch.zeros((), device=device)
    for x, y in micro_batches:
        with autocast():
            loss = loss_fn(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        (loss / len(micro_batches)).backward()
        step_loss += loss.detach().float() / len(micro_batches)
    if spec.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss


@torch.no_grad()
def evaluate(model, batches, device, autocast) -> float:
    model.eval()
    total, count = torch.zeros((), device=device, dtype=torch.float64), 0
    for x, y in batches:
        with autocast():
            loss = model.loss(x.to(device), y.to(device))
        total += loss.double() * y.numel()
        count += y.numel()
    model.train()
    return float(total) / count


def train_lm(model_cfg: TransformerConfig, spec: LMTrainSpec, train_tokens: np.ndarray,
             val_tokens: np.ndarray, device: torch.device, ckpt_path: Path | None,
             log: Callable[[str], None] = print, label: str = "run", stop_after: int | None = None,
             on_eval: Callable[[torch.nn.Module], dict] | None = None):
    """Train one model; returns (model, results dict). ``stop_after`` (tests) interrupts the run
    after that many steps, leaving its checkpoint, as a killed job would. ``on_eval(model)``, at
    every validation point, measures more curves: name → array, kept in the history (and the
    checkpoint) beside the validation loss."""
    T = model_cfg.seq_len
    total = spec.steps(T)
    micro = spec.batch_size // spec.grad_accum
    cuda = device.type == "cuda"
    sampler = WindowSampler(train_tokens, T, spec.seed, spec.allow_repeat, pin=cuda)
    epochs = sampler.require(total * spec.batch_size, label)
    val = validation_batches(val_tokens, T, spec.eval_tokens)
    checkpoints = set(eval_steps(total, spec.eval_points).tolist())

    torch.manual_seed(spec.seed)
    model = Transformer(model_cfg).to(device)
    optimizer = make_optimizer(model, spec, device)
    autocast = autocast_for(device)
    loss_fn = loss_function(model, spec)

    history = {"step": [], "val_loss": [], "train_loss": [], "lr": []}
    start, diverged_at = 0, None
    # summed training loss since the last validation point, kept on the device (no per-step sync)
    interval_loss, interval_steps = torch.zeros((), device=device), 0
    state = checkpoint.load(ckpt_path, device, warn=log) if ckpt_path else None
    # what the saved state must match to be resumed (cadence and compilation do not matter)
    fingerprint = {"model": model_cfg.to_dict(),
                   "spec": {k: v for k, v in spec.to_dict().items() if k not in RESUME_FREE}}
    if state is not None and state.get("fingerprint") == repr(fingerprint):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["step"]), {k: list(v) for k, v in state["history"].items()}
        interval_loss += float(state["interval_loss"])
        interval_steps = int(state["interval_steps"])
        diverged_at = state.get("diverged_at")
        log(f"{label}: resumed at step {start}/{total}"
            + (f" (diverged at step {diverged_at}: not trained further)" if diverged_at else ""))
    elif state is not None:
        log(f"{label}: its checkpoint is for another run (settings differ): training from step 0")

    def save(step):
        if ckpt_path:
            checkpoint.save({"fingerprint": repr(fingerprint), "model": model.state_dict(),
                             "optimizer": optimizer.state_dict(), "step": step,
                             "history": history, "interval_loss": float(interval_loss),
                             "interval_steps": interval_steps, "diverged_at": diverged_at}, ckpt_path)

    t0, last_log, tokens_per_step = time.time(), time.time(), spec.batch_size * T
    for step in range(start if diverged_at is None else total, total):
        micro_batches = [sampler.batch((step * spec.grad_accum + k) * micro, micro)
                         for k in range(spec.grad_accum)]
        lr = lr_at(step, total, spec)
        step_loss = training_step(model, loss_fn, optimizer, micro_batches, lr, spec, device,
                                  autocast)
        interval_loss += step_loss
        interval_steps += 1
        done = step + 1
        if done in checkpoints:
            history["step"].append(done)
            history["val_loss"].append(evaluate(model, val, device, autocast))
            history["train_loss"].append(float(interval_loss) / interval_steps)
            history["lr"].append(lr)
            if on_eval is not None:  # plain nested lists: the checkpoint loads with weights_only
                for name, values in on_eval(model).items():
                    history.setdefault(name, []).append(np.asarray(values, float).tolist())
                model.train()
            interval_loss.zero_()
            interval_steps = 0
            # checked where the loss is read anyway (no extra host sync): NaN/Inf never recovers
            if not (math.isfinite(history["train_loss"][-1]) and math.isfinite(history["val_loss"][-1])):
                diverged_at = done
                log(f"{label}: diverged (non-finite loss) by step {done}/{total}; stopping the run")
                save(done)
                break
        if time.time() - last_log > 30 or done == total:
            rate = (done - start) * tokens_per_step / (time.time() - t0)
            log(f"{label}: step {done}/{total}, train loss {float(step_loss):.4f}, "
                f"{rate:,.0f} tokens/s")
            last_log = time.time()
        if (spec.checkpoint_every and done % spec.checkpoint_every == 0) or done == total:
            save(done)
        if stop_after is not None and done >= stop_after and done < total:
            return model, None
    elapsed = time.time() - t0
    diverged = diverged_at is not None
    results = {
        "history": {k: np.asarray(v) for k, v in history.items()},
        "steps": total, "tokens_seen": total * tokens_per_step, "epochs": epochs,
        "status": "diverged" if diverged else "finished",
        "diverged_at_step": diverged_at if diverged else math.nan,
        "final_val_loss": history["val_loss"][-1] if history["val_loss"] and not diverged else math.nan,
        # NaN when the run was already finished (loaded from its checkpoint, nothing trained)
        "tokens_per_second": ((min(diverged_at or total, total) - start) * tokens_per_step / elapsed
                              if total > start and elapsed > 0 else math.nan),
        "lr_sequence": lr_sequence(total, spec),
    }
    return model, results
