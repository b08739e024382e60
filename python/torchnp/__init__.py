"""torchnp: fast, exact conversion between PyTorch tensors and NumPy arrays.

>>> import torch, torchnp
>>> torchnp.to_numpy(torch.ones(2, requires_grad=True))
array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import torch  # noqa: F401  (loads libtorch before the compiled engine needs it)

from torchnp import _fast
from torchnp._async import Transfer, from_numpy_async, to_numpy_async
from torchnp._device import set_staging
from torchnp._from_numpy import from_numpy
from torchnp._info import Info, info
from torchnp._patch import is_patched, patch, unpatch
from torchnp._pinned import empty_pinned, zeros_pinned
from torchnp._pool import empty_cache
from torchnp._stack import collate, stack_from_numpy
from torchnp._to_numpy import to_numpy
from torchnp._transfer import (
    TransferGuardError,
    TransferLog,
    TransferRecord,
    transfer_guard,
    transfer_log,
)
from torchnp._tree import tree_from_numpy, tree_to_numpy

# The two conversions as native entries (one C call for what the fast path answers; the Python
# functions above for everything else), when the native engine is loaded.
to_numpy = _fast.public_entry(to_numpy, 0)
from_numpy = _fast.public_entry(from_numpy, 1)

__all__ = [
    "Info",
    "Transfer",
    "TransferGuardError",
    "TransferLog",
    "TransferRecord",
    "collate",
    "empty_cache",
    "empty_pinned",
    "from_numpy",
    "from_numpy_async",
    "info",
    "is_patched",
    "patch",
    "set_staging",
    "stack_from_numpy",
    "to_numpy",
    "to_numpy_async",
    "transfer_guard",
    "transfer_log",
    "tree_from_numpy",
    "tree_to_numpy",
    "unpatch",
    "zeros_pinned",
]
