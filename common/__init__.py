"""Pieces shared by the task folders: models, data, augmentation, training, Grad-CAM, plots, CLI."""
