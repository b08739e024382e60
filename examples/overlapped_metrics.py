"""Evaluation metrics on the host while the next batch computes on the device.

A typical evaluation loop pulls each batch's logits out to NumPy for metrics (scikit-learn,
pandas, a confusion matrix) and so waits for every transfer. Here each batch's predictions are
started with ``torchnp.to_numpy_async`` — bf16 logits straight to float32 — and collected one
batch later, so the download of batch k overlaps the model's work on batch k + 1. The results
are the same bytes as the plain call; on a machine without a GPU it runs the same code on the
CPU.

    python examples/overlapped_metrics.py
"""

from __future__ import annotations

import numpy as np
import torch

import torchnp


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """A classes x classes count matrix (rows: true class), NumPy only."""
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def main(
    batches: int = 8, batch: int = 512, classes: int = 10, overlap: bool = True
) -> tuple[float, np.ndarray]:
    """Run the loop (``overlap=False``: the plain, waiting calls); the accuracy and the confusion
    matrix."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)  # the model's initial weights
    g = torch.Generator(device=device).manual_seed(0)
    model = torch.nn.Linear(64, classes).to(device=device, dtype=torch.bfloat16)
    pending: list[tuple[torchnp.Transfer, torchnp.Transfer]] = []
    total = np.zeros((classes, classes), np.int64)
    with torch.no_grad():
        for _ in range(batches):
            x = torch.randn(batch, 64, device=device, generator=g, dtype=torch.bfloat16)
            y = torch.randint(0, classes, (batch,), device=device, generator=g)
            logits = model(x)
            if not overlap:
                scores = torchnp.to_numpy(logits, np.float32)
                total += confusion(torchnp.to_numpy(y), scores.argmax(axis=1), classes)
                continue
            # Started now, collected next iteration: the copy overlaps the next batch's compute.
            pending.append((torchnp.to_numpy_async(logits, np.float32), torchnp.to_numpy_async(y)))
            if len(pending) > 1:
                total += _collect(*pending.pop(0), classes)
        for handles in pending:
            total += _collect(*handles, classes)
    accuracy = float(np.trace(total) / total.sum())
    return accuracy, total


def _collect(logits: torchnp.Transfer, labels: torchnp.Transfer, classes: int) -> np.ndarray:
    scores = logits.result()  # float32 ndarray: bf16 widened in the copy
    return confusion(labels.result(), scores.argmax(axis=1), classes)


if __name__ == "__main__":
    acc, matrix = main()
    print(f"accuracy {acc:.3f} over {matrix.sum()} samples (random model: about 0.1)")
    print(matrix)
