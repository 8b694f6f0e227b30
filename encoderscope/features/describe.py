"""Naming features: how often each fires, how strongly, its top examples, and keywords from those examples."""

from __future__ import annotations

import numpy as np

from .sae import SAE, FeaturesError

LABEL_TERMS = 3  # keywords in a label
SUPPORT = 0.2  # a label word must be in at least this share of a feature's top examples (and in two of them)


def feature_stats(ids: np.ndarray, values: np.ndarray, n_features: int, top: int = 20):
    """From codes (ids `[N, k]`, values `[N, k]`): frequency `[F]` (share of rows where the feature is active),
    mean_activation `[F]` (mean value over those rows, 0 if never active), top_ids (list of `[<= top]` row ids,
    strongest first) and top_values (their values)."""
    N = len(ids)
    active = values > 0
    rows = np.repeat(np.arange(N), ids.shape[1])[active.ravel()]
    feat = ids[active]
    val = values[active]
    count = np.bincount(feat, minlength=n_features)
    total = np.bincount(feat, weights=val, minlength=n_features)
    frequency = count / max(N, 1)
    mean_activation = np.divide(total, count, out=np.zeros(n_features), where=count > 0)
    # group the active entries by feature, strongest first (ties: the lower row id)
    order = np.lexsort((rows, -val, feat))
    starts = np.concatenate([[0], np.cumsum(count)])
    top_ids, top_values = [], []
    for f in range(n_features):
        sel = order[starts[f] : starts[f] + min(top, count[f])]
        top_ids.append(rows[sel].astype(np.int64))
        top_values.append(val[sel].astype(np.float32))
    return frequency, mean_activation, top_ids, top_values


def describe(sae: SAE, X, texts: list[str] | None = None, top: int = 20, codes=None):
    """One row per feature: feature, frequency, mean_activation, label, top_ids (row ids of `X`, strongest
    first, at most `top`), top_values. `label`: the LABEL_TERMS most distinctive words of the feature's top
    examples against the other features' (class-based TF-IDF, as the atlas names clusters); "feature i" when
    `texts` is None or the examples hold no scoring words, "(never active)" for a dead feature. A label word
    must be in at least SUPPORT of the top examples (and two), so one example's rare word (a package name) does
    not name the feature; a feature without such words keeps plain c-TF-IDF's. Sets
    `sae.labels`. `codes`: (ids, values) from `sae.encode(X)` when already computed."""
    import pandas as pd

    ids, values = sae.encode(X) if codes is None else codes
    if texts is not None and len(texts) != len(ids):
        raise FeaturesError(f"There are {len(ids)} vectors but {len(texts)} texts: give one text per vector.")
    F = sae.n_features
    frequency, mean_activation, top_ids, top_values = feature_stats(ids, values, F, top)
    labels = [f"feature {f}" for f in range(F)]
    if texts is not None:
        terms = supported_terms(texts, top_ids, LABEL_TERMS)
        if terms is not None:
            labels = [" · ".join(t) if t else labels[f] for f, t in enumerate(terms)]
    labels = [label if len(top_ids[f]) else "(never active)" for f, label in enumerate(labels)]
    sae.labels = labels
    return pd.DataFrame({
        "feature": np.arange(F, dtype=np.int32), "frequency": frequency, "mean_activation": mean_activation,
        "label": labels, "top_ids": top_ids, "top_values": top_values,
    })


def supported_terms(texts: list[str], top_ids: list[np.ndarray], n_terms: int) -> list[list[str]] | None:
    """The `n_terms` c-TF-IDF keywords of each feature's top examples (`top_ids[f]`: row ids of `texts`), chosen
    among words that are in at least max(2, SUPPORT x examples) of them; plain c-TF-IDF's keywords where no word
    is. None when the texts hold no word that is not a stop word."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    from ..atlas.layout import ctfidf_rank

    rows = np.unique(np.concatenate([ids for ids in top_ids if len(ids)] or [np.zeros(0, np.int64)]))
    try:
        vectorizer = CountVectorizer(stop_words="english", max_features=50_000).fit([str(texts[i]) for i in rows])
    except ValueError:  # only stop words or no words at all
        return None
    counts = vectorizer.transform([str(texts[i]) for i in rows])  # [examples, terms]
    member = sparse.csr_matrix(  # [features, examples]: 1 where the example is among the feature's top ones
        (np.ones(sum(map(len, top_ids))), np.searchsorted(rows, np.concatenate(top_ids or [np.zeros(0, np.int64)])),
         np.concatenate([[0], np.cumsum([len(ids) for ids in top_ids])])), shape=(len(top_ids), len(rows)))
    tf = member @ counts  # [features, terms]: how often each word occurs in each feature's examples
    holds = (member @ (counts > 0).astype(np.float64)).tocsr()  # [features, terms]: in how many of its examples
    need = np.maximum(2, SUPPORT * np.asarray(member.sum(axis=1)).ravel())  # [features]
    enough = holds.data >= np.repeat(need, np.diff(holds.indptr))
    keep = sparse.csr_matrix((enough.astype(np.float64), holds.indices, holds.indptr), shape=holds.shape)
    vocab = vectorizer.get_feature_names_out()
    supported, plain = ctfidf_rank(tf, vocab, n_terms, keep), ctfidf_rank(tf, vocab, n_terms)
    return [s or p for s, p in zip(supported, plain, strict=True)]


def search_labels(table, query: str, limit: int = 50):
    """Rows of a describe table whose label contains every word of `query` (case-insensitive), most frequent
    first; a number finds that feature id."""
    words = query.lower().split()
    if not words:
        return table.iloc[:0]
    if len(words) == 1 and words[0].isdigit():
        return table[table["feature"] == int(words[0])]
    label = table["label"].str.lower()
    mask = np.ones(len(table), bool)
    for word in words:
        mask &= label.str.contains(word, regex=False).to_numpy()
    return table[mask].sort_values("frequency", ascending=False).head(limit)
