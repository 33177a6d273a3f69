"""What one run of the LM trainer (``train/lm.py``) reports, as the cube holds it: its scalars
(parameter counts, tokens, compute under four conventions, final loss), its validation curve and
what each variable means. No PyTorch: the cube's jobs read it too."""

from __future__ import annotations

import numpy as np

from scaling_atlas.models.shape import TransformerConfig, flops_per_token, parameter_counts

#: every variable a run of the transformer family reports: name → (long_name, units)
RUN_VARIABLES = {
    "n_params": ("parameters N, embeddings included (Hoffmann's N)", "1"),
    "n_params_non_embedding": ("parameters without embeddings and head (Kaplan's N)", "1"),
    "n_params_with_head": ("non-embedding parameters plus the V·d unembedding "
                           "(Porian's last-layer count)", "1"),
    "n_layer": ("transformer blocks", "1"), "n_head": ("attention heads", "1"),
    "tokens": ("training tokens D actually seen", "token"),
    "steps": ("optimiser steps", "1"),
    "epochs": ("passes over the training split (1: no repetition)", "1"),
    "flops_6n": ("training compute 6·N·D", "FLOP"),
    "flops_kaplan": ("training compute 6·N_non-embedding·D", "FLOP"),
    "flops_attention": ("training compute (6N + 6·T·d·L)·D (Porian's attention count)", "FLOP"),
    "flops_hoffmann": ("training compute, Hoffmann et al. App. F exact count", "FLOP"),
    "final_val_loss": ("validation loss at the end of training", "nat/token"),
    "tokens_per_second": ("training throughput", "token/s"),
    "diverged": ("1 if the run diverged (non-finite loss; stopped, left out of every fit)", "1"),
    "diverged_at_step": ("validation step by which the loss was non-finite", "1"),
    "curve_step": ("optimiser step of the validation point", "1"),
    "curve_tokens": ("training tokens seen at the validation point", "token"),
    "curve_val_loss": ("validation loss at log-spaced steps", "nat/token"),
    "curve_train_loss": ("mean training loss since the previous validation point",
                         "nat/token"),
    "curve_lr": ("learning rate at the validation point", "1"),
    "lr": ("peak learning rate of the run (with lr_sweep: the sweep's best for this point, "
           "or for this width with lr_sweep_scope: size)", "1"),
    "lr_sweep": ("peak learning rates of the sweep", "1"),
    "lr_at_sweep_edge": ("1 if the chosen peak LR is the sweep's smallest or largest", "1"),
    "sweep_tokens": ("training tokens of the width's LR sweep runs (lr_sweep_scope: size)",
                     "token"),
    "sweep_final_val_loss": ("final validation loss of every LR of the sweep", "nat/token"),
    "sweep_diverged": ("1 if that LR of the sweep diverged", "1"),
    "point": ("index of the validation point", "1"),
}


def run_scalars(model_cfg: TransformerConfig, result: dict) -> dict[str, float]:
    """A finished run's scalars (``result`` as ``train_lm`` returns it)."""
    counts = parameter_counts(model_cfg)
    per_token = flops_per_token(model_cfg)
    tokens = result["tokens_seen"]
    return {
        "n_params": counts["total"], "n_params_non_embedding": counts["non_embedding"],
        "n_params_with_head": counts["non_embedding_with_head"],
        "n_layer": model_cfg.n_layer, "n_head": model_cfg.n_head,
        "tokens": tokens, "steps": result["steps"], "epochs": result["epochs"],
        "flops_6n": per_token["6N"] * tokens, "flops_kaplan": per_token["kaplan"] * tokens,
        "flops_attention": per_token["attention"] * tokens,
        "flops_hoffmann": per_token["hoffmann"] * tokens,
        "final_val_loss": result["final_val_loss"],
        "tokens_per_second": result["tokens_per_second"],
        "diverged": float(result["status"] == "diverged"),
        "diverged_at_step": result["diverged_at_step"],
    }


def history_curves(hist: dict, points: int, batch_tokens: int) -> dict[str, np.ndarray]:
    """The validation history on ``points`` points (NaN after the last one a run reached)."""
    def pad(values):
        out = np.full(points, np.nan)
        out[: len(hist["step"])] = values
        return out

    return {"curve_step": pad(hist["step"]), "curve_tokens": pad(hist["step"] * batch_tokens),
            "curve_val_loss": pad(hist["val_loss"]), "curve_train_loss": pad(hist["train_loss"]),
            "curve_lr": pad(hist["lr"])}
