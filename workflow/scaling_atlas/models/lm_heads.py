"""Superposition in language-model heads (Liu, Liu & Gore 2025, §LLMs): the output matrix.

For an unembedding W (n tokens × m width) we measure what the paper measures on real LLMs
(``shared/reference/superposition.md`` §9): the row norms (are all tokens represented?) and the
mean squared overlap ⟨(Ŵ_i·Ŵ_j)²⟩ over all pairs i < j of normalised rows, to compare with 1/m.
Pairs are visited in row blocks, so a 150k-token vocabulary needs no n × n matrix in memory.

:func:`load_hf_unembedding` reads a local Hugging Face causal-LM checkpoint (``config.json`` +
``*.safetensors``, sharded or not) and returns the same matrix the authors analysed: the tied
input embedding (GPT-2 ``wte``, OPT/Qwen ``embed_tokens``) or the untied head (``lm_head``,
Pythia ``embed_out``). No download ever happens here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

#: represented token: row norm at least this fraction of the median row norm (the LLM analogue
#: of the toy model's φ½, whose norms are on a unit scale; an LLM's scale is arbitrary)
REPRESENTED_FRACTION = 0.5
#: the paper's test, "no near-zero rows": a row below this fraction of the median norm is ≈ 0
NEAR_ZERO_FRACTION = 0.1


def overlap_statistics(W: torch.Tensor | np.ndarray, block: int = 4096) -> dict[str, float]:
    """Mean |cos| and mean cos² over all pairs i < j of normalised rows (float64 sums)."""
    W = torch.as_tensor(np.asarray(W) if not torch.is_tensor(W) else W).to(torch.float64)
    norms = W.norm(dim=1)
    unit = W[norms > 1e-12 * float(norms.max()) if len(norms) else norms > 0]
    unit = unit / unit.norm(dim=1, keepdim=True)
    n = unit.shape[0]
    if n < 2:  # no pair of non-zero rows: no overlap to measure
        return {"mean_sq_overlap": float("nan"), "mean_abs_overlap": float("nan")}
    total_sq = total_abs = 0.0
    for start in range(0, n, block):
        cos = unit[start : start + block] @ unit.T  # rows i in the block, all j
        i = torch.arange(start, min(start + block, n))[:, None]
        upper = torch.arange(n)[None, :] > i  # pairs i < j only
        total_sq += float((cos.square() * upper).sum())
        total_abs += float((cos.abs() * upper).sum())
    pairs = n * (n - 1) / 2
    return {"mean_sq_overlap": total_sq / pairs, "mean_abs_overlap": total_abs / pairs}


def unembedding_statistics(W: torch.Tensor | np.ndarray) -> dict:
    """Row norms and overlap statistics of an output matrix (rows = vocabulary tokens)."""
    W = torch.as_tensor(np.asarray(W) if not torch.is_tensor(W) else W).detach().to(torch.float64)
    norms = W.norm(dim=1)
    median = float(norms.median())
    stats = {
        "n_tokens": int(W.shape[0]), "width": int(W.shape[1]),
        "row_norms": norms.numpy(),
        "norm_median": median, "norm_min": float(norms.min()), "norm_max": float(norms.max()),
        "represented_fraction": float((norms >= REPRESENTED_FRACTION * median).float().mean()),
        "represented_fraction_paper": float((norms >= NEAR_ZERO_FRACTION * median).float().mean()),
        "zero_rows": int((norms == 0).sum()),
    }
    stats.update(overlap_statistics(W))
    # a direction shared by every row (the mean row) lifts every pairwise overlap; its share of
    # the rows' energy, and the overlaps with it projected out (the mechanism behind 1/m)
    mean = W.mean(dim=0)
    if float(mean.norm()) > 0:
        u = mean / mean.norm()
        along = W @ u
        stats["mean_direction_energy"] = float(along.square().sum() / W.square().sum())
        centred = W - along[:, None] * u[None, :]
    else:
        stats["mean_direction_energy"], centred = 0.0, W
    stats["mean_sq_overlap_centred"] = overlap_statistics(centred)["mean_sq_overlap"]
    return stats


# ----------------------------------------------------------------------------------------------
# Hugging Face checkpoints (local files only)
# ----------------------------------------------------------------------------------------------
#: tensor names of the token embedding, by family (first match wins)
EMBEDDING_NAMES = ("transformer.wte.weight", "wte.weight", "model.decoder.embed_tokens.weight",
                   "decoder.embed_tokens.weight", "model.embed_tokens.weight", "embed_tokens.weight",
                   "gpt_neox.embed_in.weight", "embed_in.weight")
#: tensor names of an untied output head
HEAD_NAMES = ("lm_head.weight", "embed_out.weight")
#: config keys that hold the model width m
WIDTH_KEYS = ("hidden_size", "n_embd", "d_model")
#: families whose head is untied unless the config says otherwise (transformers' defaults)
UNTIED_BY_DEFAULT = {"gpt_neox"}


class CheckpointError(ValueError):
    pass


def _tensor_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / name for name in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{folder}: no *.safetensors files (only safetensors weights are read;"
                              " convert pickled .bin checkpoints first)")
    return files


def _find_tensor(files: list[Path], names: tuple[str, ...]) -> tuple[str, torch.Tensor] | None:
    from safetensors import safe_open

    for name in names:
        for path in files:
            with safe_open(str(path), framework="pt") as handle:
                if name in handle.keys():
                    return name, handle.get_tensor(name)
    return None


def load_hf_unembedding(folder: str | Path) -> dict:
    """The output matrix of a local HF causal-LM checkpoint and the width m used in the fit.

    Tied models (``tie_word_embeddings``, the default for GPT-2/OPT/small Qwen) give the input
    embedding; untied ones give ``lm_head`` / ``embed_out``. OPT-350m's 512-wide embedding is
    projected up to the 1024-wide model, so, as in the paper, m is the model's hidden size.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise CheckpointError(f"{folder}: no config.json (expected a Hugging Face checkpoint folder)")
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type", "unknown")
    tied = config.get("tie_word_embeddings", model_type not in UNTIED_BY_DEFAULT)
    files = _tensor_files(folder)
    found = None if tied else _find_tensor(files, HEAD_NAMES)
    found = found or _find_tensor(files, EMBEDDING_NAMES)
    if found is None:
        raise CheckpointError(f"{folder}: no output matrix among {HEAD_NAMES + EMBEDDING_NAMES}")
    name, W = found
    width = next((int(config[k]) for k in WIDTH_KEYS if k in config), int(W.shape[1]))
    return {"matrix": W.to(torch.float32), "tensor": name, "model_type": model_type,
            "tied": bool(tied), "width": width, "vocab_size": int(W.shape[0])}
