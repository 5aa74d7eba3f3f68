"""Loss functions as plain functions on tensors; the ``nn.Module`` wrappers live one per file beside this one.

Conventions (the whole ``losses`` package):

* ``logits``: float [N, C, H, W] (ConnectNet's output, C = 2, channel 1 = person);
* ``labels``: int64 [N, H, W] with class indices 0..C-1 and ``ignore_index`` (255) for unscored pixels;
* ``soft``: float [N, H, W], a teacher's person probability in 0..1, NaN for samples without a teacher target.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


# -- Lovász-softmax (Berman, Rannen Triki, Blaschko, CVPR 2018) -------------------------------------------------
def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. errors sorted in decreasing order."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor,
                        classes: str | list[int] = "present") -> torch.Tensor:
    """Lovász-softmax of flattened ``probs`` [P, C] and ``labels`` [P] (no ignored pixels left).

    On one-hot ``probs`` this is exactly the mean over the scored classes of ``1 - IoU_c`` (the Lovász
    extension agrees with the set function on the vertices of the cube).
    """
    if probs.numel() == 0:
        return probs.sum() * 0.0
    n_classes = probs.shape[1]
    wanted = range(n_classes) if classes in ("all", "present") else classes
    losses = []
    for c in wanted:
        fg = (labels == c).to(probs.dtype)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


def _flatten(probs: torch.Tensor, labels: torch.Tensor, ignore_index: int):
    c = probs.shape[1]
    p = probs.permute(0, 2, 3, 1).reshape(-1, c)
    y = labels.reshape(-1)
    keep = y != ignore_index
    return p[keep], y[keep]


def lovasz_softmax(probs: torch.Tensor, labels: torch.Tensor, classes: str | list[int] = "present",
                   per_image: bool = False, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Lovász-softmax loss of ``probs`` [N, C, H, W] (softmax output) against ``labels`` [N, H, W]."""
    if per_image:
        return torch.stack([lovasz_softmax_flat(*_flatten(p[None], y[None], ignore_index), classes)
                            for p, y in zip(probs, labels)]).mean()
    return lovasz_softmax_flat(*_flatten(probs, labels, ignore_index), classes)


# -- distillation ---------------------------------------------------------------------------------------------
def distillation(logits: torch.Tensor, soft: torch.Tensor, mode: str = "kl", temperature: float = 1.0,
                 ignore_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Match the student's person probability to a teacher's soft mask ``soft`` [N, H, W].

    ``kl``: T² · KL(teacher || student) over the two classes at temperature T (the teacher's probability
    is re-tempered as ``sigmoid(logit(t) / T)``); ``bce``: binary cross-entropy of the student's person
    probability against the teacher's. Samples whose ``soft`` is NaN (no teacher) are left out; pixels in
    ``ignore_mask`` (bool [N, H, W]) too. Returns 0 (with a graph) when nothing is left.
    """
    if logits.shape[1] != 2:
        raise ValueError(f"distillation expects 2-class logits, got {logits.shape[1]} channels")
    keep = ~torch.isnan(soft)
    if ignore_mask is not None:
        keep = keep & ~ignore_mask
    if not keep.any():
        return logits.sum() * 0.0
    t = soft.clamp(1e-6, 1 - 1e-6)
    # 2-class softmax == sigmoid of the logit difference
    z = (logits[:, 1] - logits[:, 0]).float()
    if mode == "bce":
        loss = F.binary_cross_entropy_with_logits(z, torch.nan_to_num(t, 0.5), reduction="none")
        return loss[keep].mean()
    if mode == "kl":
        temp = float(temperature)
        if temp != 1.0:
            t = torch.sigmoid(torch.logit(t) / temp)
        zs = z / temp
        log_s1, log_s0 = F.logsigmoid(zs), F.logsigmoid(-zs)
        t = torch.nan_to_num(t, 0.5)
        kl = t * (torch.log(t) - log_s1) + (1 - t) * (torch.log1p(-t) - log_s0)
        return kl[keep].mean() * temp * temp
    raise ValueError(f"unknown distillation mode {mode!r}: use 'kl' or 'bce'")


# -- Semantic Connectivity (PP-HumanSeg), differentiable ------------------------------------------------------------
def hard_prediction(scores: torch.Tensor) -> torch.Tensor:
    """argmax over dim 1 of [N, C, H, W] logits or probabilities (detached; ties go to the lower class).

    For two classes a comparison: PyTorch's CPU ``argmax`` over a size-2 channel dim is ~50x slower."""
    scores = scores.detach()
    if scores.shape[1] == 2:
        return (scores[:, 1] > scores[:, 0]).to(torch.uint8)
    return scores.argmax(1)


def _components(mask: np.ndarray, cap: int | None):
    """8-connected components of a uint8 mask; when there are more than ``cap``, the ``cap`` largest keep
    ids 1..cap and the others get ``cap + 1`` (the "dropped" bucket). Returns ``(labels int32 HxW, n_kept)``."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    n -= 1
    if cap is None or n <= cap:
        return lab, n
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")
    remap = np.full(n + 1, cap + 1, np.int32)
    remap[0] = 0
    remap[order[:cap] + 1] = np.arange(1, cap + 1, dtype=np.int32)
    return remap[lab], cap


def semantic_connectivity(probs: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor | None = None,
                          ignore_index: int = IGNORE_INDEX, max_pred_components: int | None = 10,
                          max_label_components: int | None = None, classes: list[int] | None = None,
                          eps: float = 1e-6) -> tuple[torch.Tensor, dict]:
    """Per-image SC loss of ``probs`` [N, C, H, W] (softmax) against ``labels`` [N, H, W].

    Components come from the hard prediction ``pred`` [N, H, W] (default: ``probs.argmax(1)``; always
    detached) and from the labels; the IoUs are computed on ``probs`` so that gradients reach the logits.
    For one image and one class c, with q = probs[:, c] over the valid (non-ignored) pixels:

    * g_1..g_N: label components of c; p_1..p_K: predicted components of c (8-connectivity, the K largest
      by area kept, K <= ``max_pred_components``; smaller ones are dropped: neither paired nor lone);
    * pairs: (g_i, p_k) with |g_i ∩ p_k| > 0 (hard pixel counts);
    * m_i = Σ_{g_i \\ P} q: the probability mass that g_i holds where c is not predicted at all (P = argmax == c);
    * soft IoU_ik = (Σ_{g_i ∩ p_k} q + m_i) / (Σ_{p_k} q + |g_i| − Σ_{g_i ∩ p_k} q), i.e. the IoU of g_i with
      q restricted to p_k ∪ (g_i \\ P);
    * c_i = mean of IoU_ik over the p_k paired with g_i; m_i / |g_i| when g_i has no pair;
    * lone p_k (paired with no label component) counts s_k = Σ_{p_k} q / |p_k| in the denominator;
    * C = Σ_i c_i / (N + Σ_lone s_k), loss = 1 − C;
    * cold start: when no pair exists at all (hard C = 0: nothing predicted, or only predictions
      disjoint from the label), loss = (Σ q + |G| − 2 Σ_G q) / |I|, the soft |P Δ G| / |I|, which on a
      hard prediction disjoint from G equals the paper's |P ∪ G| / |I|.

    On a hard (one-hot) ``probs`` every soft quantity equals its pixel count (q = 1 on P, 0 elsewhere, so
    m_i = 0 and s_k = 1) and C is exactly :func:`vbg_app.tools.metrics.class_connectivity`. On soft ``probs`` the
    gradient raises q inside label components (paired intersections and unpredicted label pixels) and lowers
    it in the parts of predicted components outside the label and in stray (lone) components.

    A class is scored when it has a label component or a predicted component with a valid pixel (the
    metric's rule); the image's loss is the mean over its scored classes. Returns ``(loss [N], info)``;
    images with no scored class get loss 0 and ``info["scored"][n] = False``. ``info["connectivity"]``
    [N] is the hard connectivity of each image (mean over scored classes of C, cold-start classes
    counting 0), i.e. the metric's SC when no component was dropped by the cap.
    """
    if probs.dim() != 4 or labels.dim() != 3:
        raise ValueError(f"expected probs [N,C,H,W] and labels [N,H,W], got {tuple(probs.shape)}, "
                         f"{tuple(labels.shape)}")
    n_img, n_cls, h, w = probs.shape
    if pred is None:
        pred = hard_prediction(probs)
    pred_np = pred.detach().to("cpu", torch.uint8).numpy()
    lab_np = labels.detach().to("cpu", torch.int64).numpy()
    classes = list(range(n_cls)) if classes is None else list(classes)

    groups = []
    # key of every pixel into the batch's concatenated [N_g + 2, N_p + 2] tables (one per scored image and
    # class); -1 = not used (ignored pixel, unscored class), later sent to a dump slot
    keys = np.full((n_cls, n_img, h * w), -1, np.int64)
    offset = 0
    for b in range(n_img):
        valid = lab_np[b].ravel() != ignore_index
        n_valid = int(np.count_nonzero(valid))
        if n_valid == 0:
            continue
        all_valid = n_valid == h * w
        for c in classes:
            g_mask = (lab_np[b] == c).astype(np.uint8)
            p_mask = (pred_np[b] == c).astype(np.uint8)
            lg, n_g = _components(g_mask, max_label_components)
            lp, n_p = _components(p_mask, max_pred_components)
            cols = n_p + 2
            key = lg.ravel().astype(np.int64) * cols + lp.ravel()
            key_v = key if all_valid else key[valid]
            counts = np.bincount(key_v, minlength=(n_g + 2) * cols).reshape(n_g + 2, cols)
            p_ok = counts[:, 1:n_p + 1].sum(0) > 0  # a component wholly in ignored pixels is dropped
            if n_g == 0 and not p_ok.any():
                continue  # class absent from label and prediction: not scored
            g_total = int(counts[1:].sum())
            groups.append(dict(b=b, c=c, n_g=n_g, n_p=n_p, counts=counts, p_ok=p_ok, offset=offset,
                               n_valid=n_valid, g_total=g_total))
            row = keys[c, b]
            row[:] = key + offset
            if not all_valid:
                row[~valid] = -1
            offset += (n_g + 2) * cols
    loss = probs.new_zeros(n_img)
    conn = np.zeros(n_img)
    scored = np.zeros(n_img, bool)
    if not groups:
        return loss + probs.sum() * 0.0, {"connectivity": conn, "scored": scored}

    # One scatter-add for the whole batch (cheap to differentiate: its backward is one gather):
    # S[key] = Σ q over the valid pixels of each (label component, predicted component) cell.
    keys[keys < 0] = offset
    q_flat = probs.float().transpose(0, 1).reshape(-1)  # [C * N * H * W], class-major like ``keys``
    S_all = torch.zeros(offset + 1, dtype=torch.float32, device=probs.device).index_add_(
        0, torch.from_numpy(keys.reshape(-1)).to(probs.device), q_flat)

    per_img: dict[int, list] = {}
    per_img_hard: dict[int, list] = {}
    for g in groups:
        n_g, n_p, counts = g["n_g"], g["n_p"], g["counts"]
        cols = n_p + 2
        S = S_all[g["offset"]:g["offset"] + (n_g + 2) * cols].view(n_g + 2, cols)
        inter_h = counts[1:n_g + 1, 1:n_p + 1]  # hard |g_i ∩ p_k|
        pairs = inter_h > 0
        p_ok = g["p_ok"]
        if not pairs.any():
            # cold start: soft |P Δ G| / |I| (== |P ∪ G| / |I| on a hard prediction disjoint from G)
            sum_q = S.sum()
            sum_q_g = S[1:].sum()  # label rows (kept and dropped label components)
            val = (sum_q + g["g_total"] - 2 * sum_q_g) / g["n_valid"]
            per_img.setdefault(g["b"], []).append(val)
            per_img_hard.setdefault(g["b"], []).append(0.0)
            continue
        dev = S.device
        g_area = torch.from_numpy(counts[1:n_g + 1].sum(1).astype(np.float32)).to(dev)
        p_area = torch.from_numpy(counts[:, 1:n_p + 1].sum(0).astype(np.float32)).to(dev)
        M = torch.from_numpy(pairs).to(dev)
        S_gp = S[1:n_g + 1, 1:n_p + 1]
        miss = S[1:n_g + 1, 0]
        p_soft = S[:, 1:n_p + 1].sum(0)
        iou = (S_gp + miss[:, None]) / (p_soft[None, :] + g_area[:, None] - S_gp).clamp_min(eps)
        n_pairs = M.sum(1)
        c_i = torch.where(n_pairs > 0, (iou * M).sum(1) / n_pairs.clamp_min(1),
                          miss / g_area.clamp_min(1.0))
        # lone: paired with no label component, kept or dropped by the label cap
        touched = counts[1:, 1:n_p + 1].sum(0) > 0
        lone = torch.from_numpy(~touched & p_ok).to(dev)
        s_k = torch.where(lone, p_soft / p_area.clamp_min(1.0), torch.zeros_like(p_soft))
        C = c_i.sum() / (n_g + s_k.sum())
        per_img.setdefault(g["b"], []).append(1.0 - C)
        # hard value from counts, for logging / the metric check
        iou_h = inter_h / (counts[:, 1:n_p + 1].sum(0)[None, :] + counts[1:n_g + 1].sum(1)[:, None] - inter_h).clip(1)
        npr = pairs.sum(1)
        c_h = np.where(npr > 0, (iou_h * pairs).sum(1) / np.maximum(npr, 1), 0.0)
        per_img_hard.setdefault(g["b"], []).append(float(c_h.sum() / (n_g + int((~touched & p_ok).sum()))))
    rows = []
    for b in range(n_img):
        if b in per_img:
            rows.append(torch.stack([torch.as_tensor(v, device=probs.device, dtype=torch.float32)
                                     if not torch.is_tensor(v) else v for v in per_img[b]]).mean())
            conn[b] = float(np.mean(per_img_hard[b]))
            scored[b] = True
        else:
            rows.append(probs.sum() * 0.0)
    return torch.stack(rows), {"connectivity": conn, "scored": scored}
