"""Classification metrics in torch: accuracy, precision / recall / F1 (per class, weighted and macro) and the
confusion matrix, from predicted and true class indices.

They follow scikit-learn's definitions with `labels=range(num_classes)` and `zero_division=0`, which
tests/test_classification_metrics.py checks on random and degenerate inputs:
- precision_k = TP_k / (TP_k + FP_k), recall_k = TP_k / (TP_k + FN_k), F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k);
  a ratio with a zero denominator is 0 (a class never predicted has precision 0, not "undefined");
- "macro" is the plain mean over all `num_classes` classes, "weighted" the mean weighted by each class's
  support (its count among the true labels), so weighted recall always equals accuracy.
Computed on whatever device the tensors are on; one bincount, no Python loop over samples or classes.
"""
from __future__ import annotations

import torch

AVERAGES = ("weighted", "macro")


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: row = true class, column = predicted class (scikit-learn's layout)."""
    preds, labels = preds.reshape(-1).long(), labels.reshape(-1).long().to(preds.device)
    if preds.shape != labels.shape:
        raise ValueError(f"preds and labels differ in length: {preds.numel()} and {labels.numel()}")
    if preds.numel() and (min(preds.min(), labels.min()) < 0 or max(preds.max(), labels.max()) >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    return torch.bincount(labels * num_classes + preds, minlength=num_classes ** 2).view(num_classes, num_classes)


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.zeros_like(numerator))


def per_class_scores(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """precision, recall, f1 and support per class, from a confusion matrix (rows true, columns predicted)."""
    cm = cm.double()
    tp = cm.diagonal()
    predicted = cm.sum(0)  # TP + FP
    support = cm.sum(1)    # TP + FN
    return {"precision": _safe_ratio(tp, predicted), "recall": _safe_ratio(tp, support),
            "f1": _safe_ratio(2 * tp, predicted + support), "support": support}


def average(per_class: torch.Tensor, support: torch.Tensor, how: str) -> float:
    """The macro (plain) or weighted (by support) mean of a per-class score."""
    if how == "macro":
        return per_class.mean().item()
    if how == "weighted":
        total = support.sum()
        return (per_class * support).sum().item() / total.item() if total > 0 else 0.0
    raise ValueError(f"unknown average {how!r}; choose one of {', '.join(AVERAGES)}")


def classification_metrics(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """accuracy, precision/recall/f1 with the weighted and the macro average, and the confusion matrix.

    Keys: acc, precision_weighted, recall_weighted, f1_weighted, precision_macro, recall_macro, f1_macro
    (floats in [0, 1]) and confusion_matrix (list of rows, true class by predicted class).
    """
    cm = confusion_matrix(preds, labels, num_classes)
    scores = per_class_scores(cm)
    total = int(cm.sum())
    out: dict = {"acc": cm.diagonal().sum().item() / total if total else 0.0}
    for how in AVERAGES:
        for name in ("precision", "recall", "f1"):
            out[f"{name}_{how}"] = average(scores[name], scores["support"], how)
    out["confusion_matrix"] = cm.cpu().tolist()
    return out


def per_class_accuracy(preds: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Each class's accuracy (recall) by name; NaN for a class with no example."""
    preds, labels = preds.cpu(), labels.cpu()
    return {name: (preds[labels == i] == i).float().mean().item() if (labels == i).any() else float("nan")
            for i, name in enumerate(classes)}
