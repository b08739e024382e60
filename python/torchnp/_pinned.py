"""NumPy arrays in page-locked (pinned) host memory: device transfers from and into them skip
the staging copy (the DMA reads or writes them directly)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from torchnp import _device


def empty_pinned(shape: Any, dtype: DTypeLike = np.float64, order: str = "C") -> np.ndarray:
    """A new uninitialised ndarray in page-locked host memory (as CuPy's ``empty_pinned``).

    The memory comes from the CUDA module's allocator (``cudaHostAlloc``, usable with every
    device), or from torch's pinned allocator when torchnp was built without CUDA, and is freed
    when the last view of the array is gone. ``to_numpy(cuda_t, out=pinned)`` with the tensor's
    element type and layout and ``from_numpy(pinned, device="cuda")`` move the bytes in one DMA.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : data-type, optional
        Any NumPy or ml_dtypes type (default float64).
    order : {"C", "F"}, optional

    Returns
    -------
    numpy.ndarray
        Writable, aligned to 256 bytes.

    Raises
    ------
    RuntimeError
        No CUDA device is available (pinned memory needs the driver).

    Examples
    --------
    >>> import torch, torchnp
    >>> if torch.cuda.is_available():
    ...     a = torchnp.empty_pinned((1024, 1024), "float32")
    ...     a = torchnp.to_numpy(torch.ones(1024, 1024, device="cuda"), out=a)
    """
    return _device.pinned_array(shape, dtype, order, zero=False)


def zeros_pinned(shape: Any, dtype: DTypeLike = np.float64, order: str = "C") -> np.ndarray:
    """Like :func:`empty_pinned`, filled with zeros.

    Examples
    --------
    >>> import torch, torchnp
    >>> if torch.cuda.is_available():
    ...     assert torchnp.zeros_pinned(3, "int32").sum() == 0
    """
    return _device.pinned_array(shape, dtype, order, zero=True)
