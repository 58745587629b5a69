"""Evaluation metrics: FID/KID on torchmetrics, precision/recall, class metrics, feature networks."""
