"""The original reports' figures (shared/seeds/), as the report quotes them beside ours.

They live here rather than being imported from the tasks because the report must not import torch (it
builds in a second, with no training). tests/test_report_page.py checks each one against the task
module that also holds it, so the two cannot drift apart.
"""
from __future__ import annotations

# task_resnet_ln (seed 004): the test line of epoch 39 of 40, "Accuracy=83.06"; LayerNorm after the stem only.
RESNET_LN = {"test_acc": 0.8306, "epochs": 40, "dataset": "CIFAR-10", "ln_slots": 1, "norm_slots": 20}

# task_cifar_transfer (seed 002): (a) "Accuracy: 8735/10000" after 50 epochs; (b) "Testing Accuracy" of the
# four configurations after 30 epochs each. (c) and (d) were figures only.
CIFAR_TRANSFER = {"a": {"test_acc": 0.8735, "epochs": 50},
                  "b": {1: 0.738, 2: 0.804, 3: 0.790, 4: 0.792}, "b_epochs": 30, "dataset": "CIFAR-10",
                  "b_setup": {1: "torchvision resnet18 from scratch, all layers trainable",
                              2: "ImageNet weights, all layers trainable",
                              3: "ImageNet weights, first 7 children frozen, head 512-128-10",
                              4: "ImageNet weights, first 7 children frozen, head 512-256-128-128-64-32-10"}}

# task_catsdogs (seeds 000/001): one run, random init, 10 epochs, 28 test images, weighted averages.
CATSDOGS = {"plain": {"acc": 0.4643, "precision_weighted": 0.4067, "recall_weighted": 0.4643, "f1_weighted": 0.3665},
            "aug": {"acc": 0.5000, "precision_weighted": 0.5000, "recall_weighted": 0.5000, "f1_weighted": 0.4556},
            "test_images": 28, "train_images": 112, "epochs": 10, "dataset": "cats and dogs photos"}

# task_inaturalist (seed 003): "Best Model accuracy on test set: 44.82%", validation 43.38%, train 53.76%.
INATURALIST = {"test_acc": 0.4482, "best_val_acc": 0.4338, "train_acc": 0.5376, "epochs": 40,
               "dataset": "iNaturalist-12K"}
