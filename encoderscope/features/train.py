"""Training a TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse autoencoders").

What follows the paper: the TopK activation (only the k largest pre-activations, clipped at 0, reach the
decoder), decoder rows kept at unit norm after every step (and the gradient's component along each row removed
first), the encoder initialised as the decoder's transpose, the decoder bias at the data mean (the paper uses
the geometric median), Adam, and the AuxK loss: the k_aux largest pre-activations among *dead* features (not
active in the last `dead_after` training vectors) reconstruct the main model's residual error, which gives dead
features a gradient and revives them.

Deterministic for a seed: the initialisation draws from a seeded torch generator, the batch order from a seeded
numpy generator, and nothing else is random. Memory is bounded by the batch: X may be a memory map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .grads import loss_and_grads
from .sae import SAE, FeaturesError, check_vectors

MIN_VECTORS_PER_FEATURE = 2  # fewer and a dictionary memorises single vectors instead of finding directions
SAMPLES = 600_000  # default training length in vectors seen (epochs = SAMPLES / N, clipped to 1..50)
AUX_WEIGHT = 1 / 32  # the paper's alpha
Progress = Callable[[int, int], None]  # (steps done, steps in total)


def default_epochs(n: int) -> int:
    """Epochs for `n` training vectors: about SAMPLES vectors seen in all, at least 1, at most 50."""
    return int(np.clip(round(SAMPLES / max(n, 1)), 1, 50))


# vectors seen x features x dimensions per second on two idle cores: bench/features.py's 12k case (600,000 x
# 2,048 x 384 in 66 s); training time grows with that product (the encoder's dense product dominates)
THROUGHPUT = 600_000 * 2048 * 384 / 66


def estimate_seconds(n: int, dim: int, n_features: int, epochs: int | None = None) -> float:
    """About how long `train` takes on `n` x `dim` vectors with `n_features` on two idle cores (seconds)."""
    epochs = default_epochs(n) if epochs is None else epochs
    return epochs * n * n_features * dim / THROUGHPUT


def default_lr(n_features: int) -> float:
    """Adam's step size: the paper's 2e-4 / sqrt(F / 2^14) scaling, times 4 for our far shorter runs."""
    return float(8e-4 / np.sqrt(n_features / 2**14))


def check_request(n: int, n_features: int, k: int) -> None:
    """FeaturesError unless `n` vectors can train `n_features` features with k active."""
    if n_features < 2:
        raise FeaturesError(f"Ask for at least 2 features; got {n_features}.")
    if not 0 < k < n_features:
        raise FeaturesError(f"k (the features active per vector) must be at least 1 and below the number of "
                            f"features ({n_features}); got k = {k}.")
    need = MIN_VECTORS_PER_FEATURE * n_features
    if n < need:
        raise FeaturesError(
            f"{n_features} features need at least {need} vectors ({MIN_VECTORS_PER_FEATURE} per feature); there are "
            f"{n}. Use at most {n // MIN_VECTORS_PER_FEATURE} features, or a larger corpus."
        )


def train(X, n_features: int, k: int, seed: int = 0, epochs: int | None = None, batch_size: int = 256,
          lr: float | None = None, dead_after: int | None = None, k_aux: int | None = None,
          aux_weight: float = AUX_WEIGHT, progress: Progress | None = None) -> SAE:
    """Train a TopK SAE with `n_features` features, `k` active per vector, on `X` `[N, D]` (any float array or
    memory map; rows are used as given). `epochs`: default `default_epochs(N)`; `dead_after`: training vectors
    without firing before a feature counts as dead for AuxK (default min(N, 100,000)); `k_aux`: features AuxK
    uses (default D // 2); `aux_weight=0` turns AuxK off. `progress(step, steps)` after every batch.
    Raises FeaturesError for too few vectors, NaN/inf, or k >= n_features."""
    X = check_vectors(X)
    N, D = X.shape
    check_request(N, n_features, k)
    epochs = default_epochs(N) if epochs is None else int(epochs)
    if epochs < 1:
        raise FeaturesError(f"epochs must be at least 1; got {epochs}.")
    lr = default_lr(n_features) if lr is None else lr
    dead_after = min(N, 100_000) if dead_after is None else dead_after
    k_aux = min(D // 2, n_features) if k_aux is None else k_aux
    batch_size = max(1, min(batch_size, N))
    import torch  # only once the input is known good: importing it takes seconds

    gen = torch.Generator().manual_seed(seed)
    mean = np.zeros(D, np.float64)
    for start in range(0, N, 65_536):
        mean += np.asarray(X[start : start + 65_536], np.float64).sum(axis=0)
    mean /= N
    W_dec = torch.randn(n_features, D, generator=gen)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    # no autograd: grads.loss_and_grads sets each .grad by hand, keeping the codes sparse
    params = {"W_dec": W_dec, "W_enc": W_dec.T.clone().contiguous(), "b_enc": torch.zeros(n_features),
              "b_dec": torch.tensor(mean, dtype=torch.float32)}
    opt = torch.optim.Adam(params.values(), lr=lr)
    # the data's variance normalises the loss, so lr does not depend on the vectors' scale
    variance = float(_variance(X, mean))
    since_fired = torch.zeros(n_features, dtype=torch.long)
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-N // batch_size)
    total = epochs * steps_per_epoch
    step = 0
    for _ in range(epochs):
        order = rng.permutation(N)
        for start in range(0, N, batch_size):
            rows = np.sort(order[start : start + batch_size])  # sorted: sequential reads from a memory map
            x = torch.from_numpy(np.asarray(X[rows], np.float32))
            _, fired = loss_and_grads(params, x, k, variance, since_fired >= dead_after, k_aux, aux_weight)
            _project_out_radial(params["W_dec"])
            opt.step()
            with torch.no_grad():
                params["W_dec"] /= params["W_dec"].norm(dim=1, keepdim=True).clamp_min(1e-12)
            since_fired += len(rows)
            since_fired[fired] = 0
            step += 1
            if progress is not None:
                progress(step, total)
    p = {name: t.numpy().astype(np.float32) for name, t in params.items()}
    config = {"n_features": n_features, "k": k, "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "dead_after": dead_after, "k_aux": k_aux, "aux_weight": aux_weight, "N": int(N), "D": int(D),
              "method": "TopK SAE (Gao et al. 2024) with AuxK"}
    return SAE(p["W_enc"], p["b_enc"], p["W_dec"], p["b_dec"], k, config)


def _variance(X, mean: np.ndarray) -> float:
    """Mean squared distance of the rows of `X` to `mean` (summed over dimensions)."""
    total = 0.0
    for start in range(0, len(X), 65_536):
        total += float(((np.asarray(X[start : start + 65_536], np.float64) - mean) ** 2).sum())
    return max(total / len(X), 1e-12)


def _project_out_radial(W_dec) -> None:
    """Remove each decoder row's gradient component along the row: with rows renormalised after the step, that
    component only changes the length the renormalisation undoes."""
    import torch

    if W_dec.grad is None:
        return
    with torch.no_grad():
        W_dec.grad -= (W_dec.grad * W_dec).sum(dim=1, keepdim=True) * W_dec
