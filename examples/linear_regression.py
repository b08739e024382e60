"""Fit y = 2x + 1 with torch, starting from NumPy data and plotting through NumPy again.

The workflow users start from: data in NumPy, a model in torch, results back in NumPy for
matplotlib. ``torchnp.from_numpy(X, dtype=torch.float32)`` converts and casts in one pass, and
``torchnp.to_numpy(model(X_t))`` reads a tensor that requires grad without ``.detach()``.

Run it::

    python examples/linear_regression.py --out fit.png

It prints the fitted slope and intercept (about 1.99 and 1.02 with the default settings).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
import numpy as np
import torch

import torchnp


def make_data(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NumPy data on the line y = 2x + 1 with a little Gaussian noise (float64, shape (n, 1))."""
    rng = np.random.RandomState(seed)  # the tutorial's np.random.seed(0); rand; randn stream
    X = rng.rand(n, 1)
    y = 2 * X + 1 + 0.1 * rng.randn(n, 1)
    return X, y


def fit(
    X: np.ndarray, y: np.ndarray, lr: float = 0.1, epochs: int = 2000, seed: int = 0
) -> tuple[torch.nn.Linear, np.ndarray]:
    """Train a one-feature linear model with plain SGD on the full batch.

    lr 0.1 for 2,000 epochs converges on this data (slope 1.99, intercept 1.02); the classic
    tutorial setting lr 0.01 for 100 epochs stops far from it (slope about 0.7).

    Returns the model and its predictions on X as a NumPy array.
    """
    torch.manual_seed(seed)
    X_t = torchnp.from_numpy(X, dtype=torch.float32)  # float64 -> float32 in the same pass
    y_t = torchnp.from_numpy(y, dtype=torch.float32)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss()
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(X_t), y_t)
        loss.backward()
        optimizer.step()
    predictions = torchnp.to_numpy(model(X_t))  # requires grad: no .detach() needed
    return model, predictions


def plot(X: np.ndarray, y: np.ndarray, predictions: np.ndarray, out_path: Path) -> None:
    """Scatter the data and draw the fitted line into a PNG."""
    order = np.argsort(X[:, 0])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.scatter(X[:, 0], y[:, 0], s=12, label="data")
    ax.plot(X[order, 0], predictions[order, 0], color="C3", label="fit")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, format="png")
    plt.close(fig)


def main(out_path: str | Path = "linear_regression.png") -> tuple[float, float]:
    """Make the data, fit, plot to `out_path`; return (slope, intercept).

    Examples
    --------
    >>> slope, intercept = main("/tmp/fit.png")  # doctest: +SKIP
    >>> round(slope, 1), round(intercept, 1)  # doctest: +SKIP
    (2.0, 1.0)
    """
    X, y = make_data()
    model, predictions = fit(X, y)
    plot(X, y, predictions, Path(out_path))
    slope = float(torchnp.to_numpy(model.weight)[0, 0])
    intercept = float(torchnp.to_numpy(model.bias)[0])
    return slope, intercept


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="linear_regression.png", help="PNG to write")
    args = parser.parse_args()
    slope, intercept = main(args.out)
    print(f"slope {slope:.2f}, intercept {intercept:.2f}; plot written to {args.out}")


if __name__ == "__main__":
    _cli()
