"""The hand-written SAE gradients (features/grads.py) against autograd on the dense formulation of the same loss:
a wrong sign, a missed ReLU mask, b_dec's path through the encoder or the AuxK term dropped would each fail here."""

from __future__ import annotations

import pytest
import torch

from encoderscope.features.grads import loss_and_grads


def dense_loss(p: dict, x, k: int, variance: float, dead, k_aux: int, aux_weight: float):
    """The loss as written in the paper, through dense codes; autograd differentiates it."""
    pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
    values, ids = pre.topk(k, dim=1)
    recon = p["b_dec"] + torch.zeros_like(pre).scatter(1, ids, values.relu()) @ p["W_dec"]
    loss = ((recon - x) ** 2).sum(dim=1).mean() / variance
    n_dead = int(dead.sum())
    if aux_weight > 0 and n_dead > 0:
        error = (x - recon).detach()
        aux_values, aux_ids = pre.masked_fill(~dead, float("-inf")).topk(min(k_aux, n_dead), dim=1)
        guess = torch.zeros_like(pre).scatter(1, aux_ids, aux_values.relu()) @ p["W_dec"]
        error_var = ((error - error.mean(dim=0)) ** 2).sum(dim=1).mean().clamp_min(1e-12)
        loss = loss + aux_weight * ((guess - error) ** 2).sum(dim=1).mean() / error_var
    return loss


@pytest.mark.parametrize("n_dead", [0, 7, 40])
def test_hand_gradients_equal_autograd(n_dead):
    gen = torch.Generator().manual_seed(n_dead)
    B, D, F, k = 33, 12, 48, 5
    x = torch.randn(B, D, generator=gen, dtype=torch.float64)
    W_dec = torch.randn(F, D, generator=gen, dtype=torch.float64)
    p = {"W_enc": torch.randn(D, F, generator=gen, dtype=torch.float64) * 0.5,
         "b_enc": torch.randn(F, generator=gen, dtype=torch.float64) * 0.3,  # some pre-activations < 0: ReLU masks
         "W_dec": W_dec / W_dec.norm(dim=1, keepdim=True), "b_dec": torch.randn(D, generator=gen, dtype=torch.float64)}
    dead = torch.zeros(F, dtype=torch.bool)
    dead[torch.randperm(F, generator=gen)[:n_dead]] = True
    args = (x, k, 2.5, dead, 6, 0.25)

    ref = {name: t.clone().requires_grad_() for name, t in p.items()}
    want = dense_loss(ref, *args)
    want.backward()
    got, fired = loss_and_grads(p, *args)

    assert got == pytest.approx(want.item(), rel=1e-10)
    for name in p:
        torch.testing.assert_close(p[name].grad, ref[name].grad, rtol=1e-9, atol=1e-12, msg=name)
    pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
    values, ids = pre.topk(k, dim=1)
    assert fired.tolist() == sorted(set(ids[values > 0].tolist()))
