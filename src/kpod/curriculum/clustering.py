"""Question clustering for the diversity term of Eq. 12: K-means over question embeddings.

The paper averages GloVe vectors over a question's words. GloVe is often not at hand, so the default
averages the student's own input embeddings over the question's tokens (the same idea with vectors
the user already has); a GloVe text file, TF-IDF and a sentence-transformers model are options.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer

from kpod.errors import DataError, KpodError
from kpod.models.loading import LoadedModel

_WORD = re.compile(r"[\w']+")


def student_embeddings(model: LoadedModel, questions: Sequence[str]) -> np.ndarray:
    """Mean of the student's input embedding rows over each question's tokens."""
    table = model.model.get_input_embeddings().weight.detach().float().cpu()
    out = np.zeros((len(questions), table.shape[1]), dtype=np.float32)
    for row, ids in enumerate(model.tokenizer(list(questions), add_special_tokens=False)["input_ids"]):
        if ids:
            out[row] = table[torch.as_tensor(ids)].mean(dim=0).numpy()
    return out


def glove_embeddings(path: str | Path, questions: Sequence[str]) -> np.ndarray:
    """Mean GloVe vector of each question's lower-cased words (a GloVe text file: `word v1 v2 ...`);
    words missing from the file are skipped, a question with none gets the zero vector."""
    path = Path(path)
    if not path.exists():
        raise DataError("GloVe file not found", path=path)
    tokenized = [_WORD.findall(q.lower()) for q in questions]
    vocab = {w for words in tokenized for w in words}
    vectors: dict[str, np.ndarray] = {}
    dim = None
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if word not in vocab:
                continue
            try:
                vec = np.asarray(rest.split(), dtype=np.float32)
            except ValueError:
                raise DataError("expected a word followed by numbers", path=path, line=number) from None
            if dim is not None and vec.size != dim:
                raise DataError(f"vector of size {vec.size}, expected {dim}", path=path, line=number)
            dim = vec.size
            vectors[word] = vec
    if dim is None:
        raise DataError("no question word has a vector in this file", path=path)
    out = np.zeros((len(questions), dim), dtype=np.float32)
    for row, words in enumerate(tokenized):
        found = [vectors[w] for w in words if w in vectors]
        if found:
            out[row] = np.mean(found, axis=0)
    return out


def tfidf_embeddings(questions: Sequence[str]):
    """L2-normalized TF-IDF vectors (sparse), fitted on the questions themselves."""
    return TfidfVectorizer(lowercase=True, sublinear_tf=True).fit_transform(questions)


def sentence_transformer_embeddings(name_or_path: str, questions: Sequence[str]) -> np.ndarray:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise KpodError("embedding 'sentence-transformers' needs `pip install sentence-transformers`") from None
    return SentenceTransformer(name_or_path).encode(list(questions), normalize_embeddings=True)


def question_embeddings(questions: Sequence[str], source: str, *, model: LoadedModel | None = None,
                        path: str | None = None):
    """Embed questions with `source`: student | glove | tfidf | sentence-transformers."""
    if source == "student":
        if model is None:
            raise KpodError("embedding 'student' needs the student model")
        return student_embeddings(model, questions)
    if source == "tfidf":
        return tfidf_embeddings(questions)
    if path is None:
        raise KpodError(f"embedding '{source}' needs --embedding-path")
    if source == "glove":
        return glove_embeddings(path, questions)
    if source == "sentence-transformers":
        return sentence_transformer_embeddings(path, questions)
    raise KpodError(f"unknown embedding '{source}'")


def cluster_questions(embeddings, k: int, seed: int = 0) -> np.ndarray:
    """K-means labels 0..K'-1 (K' = min(k, number of questions)); identical questions share a cluster."""
    n = embeddings.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, n)
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct questions than clusters
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(embeddings)
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)
