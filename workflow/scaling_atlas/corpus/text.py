"""Real text: local UTF-8 files or folders (or a verified download), tokenised to ids.

Tokenisers: ``bytes`` (UTF-8 bytes, vocabulary 256 + end-of-document) or ``bpe``, a byte-level
BPE trained on the corpus itself with the Hugging Face ``tokenizers`` library (deterministic for
a given corpus and vocabulary size; saved next to the tokens as ``tokenizer.json``).
Documents: each file is a document; inside a file, ``<|endoftext|>`` separates documents
(TinyStories' format). Documents are joined with the end-of-document token.

``python_stdlib``: an offline real-text source that every fresh machine has, the running
interpreter's own standard-library sources (every ``*.py`` under the stdlib folder, tests
included, ``site-packages`` excluded, sorted by relative path; files that are not UTF-8, a
handful of encoding tests, are skipped and counted). It is pinned by the Python version and the
sha256 of the concatenation (relative path, NUL, bytes, per file); ``corpus.sha256`` may pin
that digest, and another interpreter's library is then refused by name.
"""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from pathlib import Path

import numpy as np

from scaling_atlas.corpus.grammar import GrammarSpec
from scaling_atlas.datasets import DataSourceError, download, sha256_of

END_OF_TEXT = "<|endoftext|>"


class CorpusError(ValueError):
    """The corpus cannot be used; the message names the config key and the file."""


def corpus_files(path: str | Path) -> list[Path]:
    """The files of a corpus path (a file, or every file under a folder, sorted)."""
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"corpus.path: {root} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                   and not p.name.startswith("."))
    if not files:
        raise CorpusError(f"corpus.path: {root} is an empty folder")
    if sum(p.stat().st_size for p in files) == 0:
        raise CorpusError(f"corpus.path: {root} is empty (0 bytes of text)")
    return files


STDLIB_EXCLUDED = frozenset({"site-packages", "dist-packages", "__pycache__"})


def stdlib_corpus(max_documents: int = 0, root: str | Path | None = None) -> tuple[list[str], dict]:
    """The interpreter's standard-library sources as documents (sorted by relative path), and
    their provenance: Python version, folder, file count, skipped files, the sha256 of the
    concatenation. ``max_documents`` > 0 keeps the first that many files (small presets)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted((p for p in root.rglob("*.py") if p.is_file() and not
                    (STDLIB_EXCLUDED & set(p.relative_to(root).parts))),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise CorpusError(f"corpus.source python_stdlib: no *.py files under {root}")
    digest, documents, skipped = hashlib.sha256(), [], []
    for path in files:
        if max_documents and len(documents) >= max_documents:
            break
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(path.relative_to(root).as_posix())
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + raw)
        if text.strip():
            documents.append(text)
    meta = {"python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "stdlib_folder": str(root), "stdlib_files": len(documents),
            "stdlib_skipped_not_utf8": skipped, "stdlib_sha256": digest.hexdigest()}
    return documents, meta


def read_documents(files: list[Path]) -> list[str]:
    """Strictly decoded UTF-8 documents; a bad byte is an error naming the file and offset."""
    documents = []
    for path in files:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CorpusError(f"corpus.path: {path} is not UTF-8 text (byte {error.start}: "
                              f"{raw[error.start:error.start + 1]!r}); convert it or remove it") from None
        documents += [doc for doc in text.split(END_OF_TEXT) if doc.strip()]
    if not documents:
        raise CorpusError("corpus.path: the corpus holds no non-blank text")
    return documents


def fetch(url: str, sha256: str, cache_dir: str | Path) -> Path:
    """Download a public corpus once (pinned sha256), e.g. TinyStories' validation file."""
    if not sha256:
        raise CorpusError("corpus.sha256: a download source needs the file's sha256 pinned")
    dest = Path(cache_dir) / Path(url.split("?")[0]).name
    try:
        return download(url, dest, sha256)
    except DataSourceError as error:
        raise CorpusError(f"corpus.url: {error}") from None


def tokenize(documents: list[str], tokenizer: str, vocab_size: int, save_to: Path | None = None):
    """(ids of all documents joined by the end token, vocabulary size, end token id)."""
    if tokenizer == "bytes":
        end = 256
        ids = []
        for doc in documents:
            ids.append(np.frombuffer(doc.encode("utf-8"), dtype=np.uint8).astype(np.int32))
            ids.append(np.array([end], dtype=np.int32))
        return np.concatenate(ids), 257, end
    if tokenizer != "bpe":
        raise CorpusError(f"corpus.tokenizer: unknown tokenizer {tokenizer!r} (bytes or bpe)")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END_OF_TEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(documents, trainer)
    end = bpe.token_to_id(END_OF_TEXT)
    if save_to is not None:
        bpe.save(str(save_to))
    ids = []
    for encoding in bpe.encode_batch(documents):
        ids.append(np.asarray(encoding.ids, dtype=np.int32))
        ids.append(np.array([end], dtype=np.int32))
    return np.concatenate(ids), bpe.get_vocab_size(), end


def checksums(files: list[Path]) -> dict[str, str]:
    return {str(p): sha256_of(p) for p in files}


def corpus_problems(corpus: dict) -> list[str]:
    """What is wrong with a ``corpus`` config section (grammar, text or download), as
    ``key: problem`` lines; empty if nothing."""
    problems = []
    if corpus["source"] == "grammar":
        try:
            GrammarSpec(**corpus.get("grammar", {}))
        except (TypeError, ValueError) as error:
            problems.append(f"corpus.grammar: {error}")
    elif corpus["source"] == "text":
        if not corpus.get("path"):
            problems.append("corpus.path: source text needs a path (a file or a folder)")
        else:
            try:
                corpus_files(corpus["path"])
            except CorpusError as error:
                problems.append(str(error))
    elif corpus["source"] == "download" and not (corpus.get("url") and corpus.get("sha256")):
        problems.append("corpus.url / corpus.sha256: a download source needs both, the sha256 "
                        "pinned (the file is verified before use)")
    return problems
