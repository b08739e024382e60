"""Existing NumPy-based code, unchanged, fed bf16 tensors that require grad, under torchnp.patch().

``summarize`` and ``plot`` below stand for code you do not control (a metrics library, a plotting
helper): they call ``np.asarray(t)``, ``t.numpy()`` and ``torch.from_numpy(a[::-1])``. With torch
alone each of those raises: bfloat16 has no NumPy type, a tensor that requires grad refuses
``.numpy()`` conversions through ``__array__``, and torch cannot hold negative strides. Under
``with torchnp.patch():`` the same code runs. bf16 arrays come back as ml_dtypes arrays sharing the
tensor's memory, the reversed array is copied once, and ``transfer_log`` shows that nothing crossed
a device boundary (on a CUDA machine it would list each download with its call site).

Run it::

    python examples/dropin_legacy_code.py --out weights.png

It prints what each legacy call returned and the transfer count.
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

# ---- "legacy" code: written for NumPy arrays, never for bf16 tensors -------------------------


def summarize(weights) -> dict[str, float]:
    """Statistics of anything array-like, the NumPy way."""
    a = np.asarray(weights, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "max": float(np.abs(a).max())}


def reversed_tensor(values) -> torch.Tensor:
    """A tensor of the values in reverse order, the way NumPy users write it."""
    return torch.from_numpy(np.asarray(values)[::-1])


def plot(series: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, y in series.items():
        ax.plot(y, label=name)  # matplotlib calls np.asarray on each tensor
    ax.legend()
    fig.savefig(out, dpi=80)
    plt.close(fig)


# ---- the program ----------------------------------------------------------------------------


def main(out: Path) -> dict:
    """Run the legacy code on a bf16 layer under the patch; the results, for the caller."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 8).to(torch.bfloat16)  # parameters: bf16, requires grad
    with torchnp.patch(), torchnp.transfer_log() as log:
        stats = summarize(layer.weight)
        with torch.no_grad():
            view = layer.bias.numpy()  # grad mode off: torch's rule; bf16: an ml_dtypes view
        back = reversed_tensor(layer.bias.detach().float())
        plot({"bias": layer.bias, "reversed": back}, out)
    assert not torchnp.is_patched()  # restored on exit
    return {"stats": stats, "bias_dtype": str(view.dtype), "reversed": back, "transfers": log.count}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("weights.png"))
    result = main(parser.parse_args().out)
    s = result["stats"]
    print(f"weight mean {s['mean']:.4f}, std {s['std']:.4f}, max |w| {s['max']:.4f}")
    print(f"bias.numpy() under the patch: dtype {result['bias_dtype']}")
    print(f"host <-> device transfers: {result['transfers']}")
