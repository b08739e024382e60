"""torch's own conversion functions, taken when torchnp is imported, before anyone patches them.

torchnp calls torch's conversions internally (a view of a tensor is torch's ``Tensor.numpy``, a
tensor over an array is ``torch.from_numpy``). It must call these references, never the names on
``torch``: under ``torchnp.patch()`` those names are torchnp's, and a patched function calling
back into the patch would recurse (a naive patch of ``Tensor.numpy`` used to hang that way).
"""

from __future__ import annotations

import torch

tensor_numpy = torch.Tensor.numpy
tensor_array = torch.Tensor.__array__
tensor_eq = torch.Tensor.__eq__
tensor_ne = torch.Tensor.__ne__
from_numpy = torch.from_numpy
as_tensor = torch.as_tensor
asarray = torch.asarray
