"""torchnp: fast, exact conversion between PyTorch tensors and NumPy arrays.

>>> import torch, torchnp
>>> torchnp.to_numpy(torch.ones(2, requires_grad=True))
array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import torch  # noqa: F401  (loads libtorch before the compiled engine needs it)

from torchnp._from_numpy import from_numpy
from torchnp._info import Info, info
from torchnp._patch import is_patched, patch, unpatch
from torchnp._pool import empty_cache
from torchnp._stack import collate, stack_from_numpy
from torchnp._to_numpy import to_numpy
from torchnp._transfer import (
    Transfer,
    TransferGuardError,
    TransferLog,
    transfer_guard,
    transfer_log,
)
from torchnp._tree import tree_from_numpy, tree_to_numpy

__all__ = [
    "Info",
    "Transfer",
    "TransferGuardError",
    "TransferLog",
    "collate",
    "empty_cache",
    "from_numpy",
    "info",
    "is_patched",
    "patch",
    "stack_from_numpy",
    "to_numpy",
    "transfer_guard",
    "transfer_log",
    "tree_from_numpy",
    "tree_to_numpy",
    "unpatch",
]
