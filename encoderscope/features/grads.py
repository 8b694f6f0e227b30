"""The TopK SAE's training loss and its gradients, by hand, so that the sparse codes stay sparse.

Autograd on the dense formulation (`code [B, F] @ W_dec`) spends as much time on the decoder and on the
encoder's backward pass as on the forward matrix product, although only k of F codes per row are non-zero.
Here every product that touches the codes runs on the k active features alone, through sparse matrices
(`[B, F]` with B·k entries): about 4 dense `[B, D] x [D, F]`-sized products per step become 1.
Sparse products on the CPU sum each output row in a fixed order, so a step is deterministic.
The AuxK term works on the dead features' columns alone (dense there: its k_aux, up to D/2, codes per row are
too many for sparse products to pay off), so its cost grows with the number of dead features, not with F.

Shapes: x `[B, D]`, W_enc `[D, F]`, b_enc `[F]`, W_dec `[F, D]`, b_dec `[D]`.
`tests/unit/test_features_grads.py` checks every gradient against autograd on the dense formulation.
"""

from __future__ import annotations


def loss_and_grads(p: dict, x, k: int, variance: float, dead, k_aux: int, aux_weight: float):
    """(loss, fired): the normalised MSE of the TopK reconstruction of `x` plus aux_weight x the AuxK loss, as a
    float; the ids of the features that fired in this batch. Sets `.grad` on the four parameters in `p`."""
    import torch

    B, D = x.shape
    F = p["W_dec"].shape[0]
    with torch.no_grad():
        W_enc, b_enc, W_dec, b_dec = p["W_enc"], p["b_enc"], p["W_dec"], p["b_dec"]
        xc = x - b_dec
        pre = torch.addmm(b_enc, xc, W_enc)  # [B, F]
        values, ids = pre.topk(k, dim=1)  # [B, k]
        act = values.clamp_min(0)
        code = _sparse(ids, act, F)  # [B, F], B*k entries
        recon = torch.sparse.mm(code, W_dec) + b_dec  # [B, D]
        err = recon - x
        loss = float((err * err).sum()) / (B * variance)
        g_recon = err * (2.0 / (B * variance))  # d loss / d recon
        g_W_dec = torch.sparse.mm(code.t(), g_recon)  # [F, D]
        g_b_dec = g_recon.sum(0)
        # d loss / d pre at the active entries: <g_recon, W_dec[id]> where the ReLU passed
        g_act = (W_dec[ids] @ g_recon.unsqueeze(2)).squeeze(2) * (values > 0)  # [B, k]
        g_pre = _sparse(ids, g_act, F)
        g_W_enc = torch.sparse.mm(g_pre.t(), xc).T  # [D, F]
        g_xc = torch.sparse.mm(g_pre, W_enc.T)  # [B, D]
        g_b_enc = torch.zeros(F, dtype=x.dtype).index_add_(0, ids.reshape(-1), g_act.reshape(-1))
        dead_ids = dead.nonzero().squeeze(1)  # [n_dead]
        if aux_weight > 0 and len(dead_ids):
            aux_loss, g_aux, g_aux_dec = _aux(pre[:, dead_ids], -err, min(k_aux, len(dead_ids)), W_dec[dead_ids])
            loss += aux_weight * aux_loss
            g_aux *= aux_weight  # [B, n_dead]: d loss / d pre in the dead features' columns
            g_W_dec[dead_ids] += aux_weight * g_aux_dec  # ids are distinct: a plain indexed add
            g_W_enc[:, dead_ids] += xc.T @ g_aux
            g_xc += g_aux @ W_enc[:, dead_ids].T
            g_b_enc[dead_ids] += g_aux.sum(0)
        g_b_dec -= g_xc.sum(0)  # b_dec also enters through xc = x - b_dec
        for name, grad in (("W_enc", g_W_enc), ("b_enc", g_b_enc), ("W_dec", g_W_dec), ("b_dec", g_b_dec)):
            p[name].grad = grad.contiguous()
        fired = torch.unique(ids[values > 0])
    return loss, fired


def _sparse(ids, values, F: int):
    """A `[B, F]` sparse matrix with `values[b, j]` at `(b, ids[b, j])` (ids distinct within a row)."""
    import torch

    B, k = ids.shape
    ids, order = ids.sort(dim=1)  # row-major sorted indices: a coalesced matrix, no sorting inside the products
    rows = torch.arange(B).repeat_interleave(k)
    return torch.sparse_coo_tensor(torch.stack([rows, ids.reshape(-1)]), values.gather(1, order).reshape(-1),
                                   (B, F), is_coalesced=True, check_invariants=False)


def _aux(pre_dead, error, k_aux: int, W_dead):
    """AuxK on the dead features' columns only (its cost grows with their number, not F): the k_aux largest of
    `pre_dead` `[B, n_dead]` reconstruct `error` `[B, D]` (what the live features missed, a constant here) through
    their decoder rows `W_dead` `[n_dead, D]`. (loss, d loss / d pre_dead `[B, n_dead]`, d loss / d W_dead)."""
    import torch

    B = pre_dead.shape[0]
    aux_values, aux_ids = pre_dead.topk(k_aux, dim=1)
    aux_code = torch.zeros_like(pre_dead).scatter_(1, aux_ids, aux_values.clamp_min(0))  # [B, n_dead]
    diff = aux_code @ W_dead - error  # [B, D]
    error_var = float(((error - error.mean(dim=0)) ** 2).sum(dim=1).mean().clamp_min(1e-12))
    g_guess = diff * (2.0 / (B * error_var))
    g_code = (g_guess @ W_dead.T) * (aux_code > 0)  # only where the ReLU passed
    return float((diff * diff).sum()) / (B * error_var), g_code, aux_code.T @ g_guess
