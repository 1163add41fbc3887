"""What task_resnet_ln reports, in one place (no torch: the report imports it): the original report's figures,
the keys its metrics.json carries, and its section of the report page (`section`, with `parts`, `headline` and
`is_stand_in`, which report/ asks every task for).
"""
from __future__ import annotations

import re
from pathlib import Path

from common.markdown import Markdown, code, escape, percent, table
from report.page import Page, count, heading, not_run, on_data, pct, provenance
from report.runs import Run, number

TASK = "task_resnet_ln"
TITLE = "ResNet-18 with LayerNorm in every norm slot"
DATA = "CIFAR-10"  # the assignment's own data; any other is a stand-in
MAKE = "make cifar-ln EPOCHS=40"
FLAG = "plateau_patience"  # a flag only this task's train.py has: it names the task of a config.json without "task"
# The original report: the test line of epoch 39 of 40, "Accuracy=83.06"; LayerNorm after the stem only (1 of the
# 20 norm slots; BatchNorm in the other 19); 149 s per epoch on its GPU (391 iterations at 2.63 it/s, batch 128).
ORIGINAL = {"test_acc": 0.8306, "epochs": 40, "ln_slots": 1, "norm_slots": 20, "epoch_s": 149}
# The keys of the run's metrics.json that the report reads.
METRICS = {"run": ("test_acc", "best_val_acc", "best_epoch", "epochs", "params", "misclassified_total")}


def is_stand_in(config: dict) -> bool:
    return config.get("dataset") != "cifar10"


def parts(run: Run) -> set[str]:
    return {"run"}


def headline(parts: dict[str, Run]) -> tuple[str, Run | None, str]:
    """The original's headline figure, and the run and figure of ours beside it on the page's first table."""
    run = parts.get("run")
    return f"{percent(ORIGINAL['test_acc'])} test (CIFAR-10)", run, pct(run.metrics["test_acc"]) if run else ""


def norm_slots(summary: str) -> tuple[int, int]:
    """(LayerNorm rows, all norm rows) in a torchsummary table."""
    norms = re.findall(r"^\s*(\w*Norm\w*)-\d+\s", summary, re.M)
    return sum(n.startswith("LayerNorm") for n in norms), len(norms)


def section(page: Page, parts: dict[str, Run], incomplete: list[Path]) -> None:
    """The task's section: the recipe beside the original's, the test accuracy, the curves, the two grids."""
    heading(page, TASK)
    run, o = parts.get("run"), ORIGINAL
    if run is None:
        page.add(f"The original: **{pct(o['test_acc'])}** test accuracy on CIFAR-10 after 40 epochs, "
                 "with LayerNorm in 1 of 20 norm slots.", not_run("This task", MAKE, incomplete))
        return
    provenance(page, [("the run", run)])
    c, m = run.config, run.metrics
    e = escape  # config.json's values are data
    ln, slots = norm_slots(run.read_text("summary.txt"))
    page.add("### LayerNorm slots and the recipe")
    page.add(table(["", "the original", "this run"], [
        ["LayerNorm slots", f"{o['ln_slots']} of {o['norm_slots']} (after the stem; BatchNorm in the other 19)",
         Markdown(f"**{ln} of {slots}**" + (" (counted in summary.txt)" if slots else " (summary.txt missing)"))],
        ["model", "ResNet-18", Markdown(f"ResNet-18, width {e(c.get('width'))}, norm {code(c.get('norm'))}"
                                        f"{', Weight Standardization' if c.get('weight_std') else ''}; "
                                        f"{count(m['params'])} parameters")],
        ["epochs, batch", f"{o['epochs']}, 128", f"{c.get('epochs')}, {c.get('batch_size')}"],
        ["optimiser", "SGD", Markdown(f"SGD, lr {e(c.get('lr'))}, momentum {e(c.get('momentum'))}"
                                      f"{', nesterov' if c.get('nesterov') else ''}, weight decay "
                                      f"{e(c.get('weight_decay'))}, gradient clipping "
                                      f"{e(c.get('grad_clip') or 'off')}")],
        ["schedule", "ReduceLROnPlateau, patience 0, on test accuracy",
         Markdown(f"warm-up {e(c.get('warmup_epochs'))} epoch, ReduceLROnPlateau on validation accuracy (factor "
                  f"{e(c.get('plateau_factor'))}, patience {e(c.get('plateau_patience'))}, min lr "
                  f"{e(c.get('min_lr'))}), anneal over the last {e(c.get('anneal_epochs'))} epoch")],
        ["augmentation", "RandomCrop(32, 4), CutOut 16, Rotate ±5°",
         Markdown(f"RandomCrop(32, {e(c.get('crop_padding'))}), {'flip, ' if c.get('flip') else ''}Rotate "
                  f"±{e(c.get('rotate'))}°, CutOut {e(c.get('cutout'))}")],
        ["best checkpoint chosen on", "the test set", f"a validation split of {split(c, 'val')} images"],
    ]))
    page.add("### Test accuracy")
    page.add(table(["", "epochs", "test accuracy"], [
        ["the original, CIFAR-10", o["epochs"], Markdown(f"**{pct(o['test_acc'])}**")],
        ["this run", m["epochs"], Markdown(on_data(run, f"**{pct(m['test_acc'])}**") +
                                               f" (best validation {pct(m['best_val_acc'])}, epoch "
                                               f"{e(m['best_epoch'])})")],
    ], right=(1,)))
    page.add("### Curves and the per-step loss", page.image(run, "curves.png", "loss, accuracy and LR per epoch"),
             page.image(run, "steps.png", "training loss and LR of every step", width=720))
    asked, total = c.get("misclassified", 20), m["misclassified_total"]
    shown = min(asked, number(total)) if type(asked) is int else asked  # the grids hold no more than there are
    page.add(f"### {e(shown)} misclassified test images and their Grad-CAM",
             f"Drawn at random (seeded) from the {count(total)} misclassified test images; "
             f"Grad-CAM at {code(c.get('gradcam_layer'))} on the same images.",
             page.pair(page.image(run, "misclassified.png", "misclassified test images"),
                       page.image(run, "gradcam.png", "Grad-CAM of the same images")))


def split(config: dict, name: str) -> str:
    return count((config.get("split_sizes") or {}).get(name))
