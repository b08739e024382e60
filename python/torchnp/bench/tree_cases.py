"""The T regime: many tensors at once (a state_dict, a stack of images, a DataLoader's collate),
each against the way a user would write it with the built-ins."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

import torchnp
from torchnp.bench.cases import NUMPY, TORCH, TORCHNP, Case, Prepared, Sizes, Way

# Targets (issue: many tensors at once): T1 and T2 >= 1.5x their built-in, T3 >= 1.3x.
T_TARGETS = {"T1": 1.5, "T2": 1.5, "T3": 1.3}


def resnet50_state_dict(scale: int = 1) -> OrderedDict[str, torch.Tensor]:
    """A state_dict of ResNet-50's shapes (320 tensors, 25.6 M parameters; torchvision is not
    needed): every conv weight, the batch norms' four vectors and counter, the classifier.
    `scale` divides the channel counts (the smoke test's tiny profile)."""
    g = torch.Generator().manual_seed(0)
    sd: OrderedDict[str, torch.Tensor] = OrderedDict()

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g)

    def bn(name: str, c: int) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{name}.{p}"] = torch.randn(c, generator=g)
        sd[f"{name}.num_batches_tracked"] = torch.tensor(0)

    conv("conv1", 3, 64 // scale, 7)
    bn("bn1", 64 // scale)
    cin = 64 // scale
    for layer, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        w = width // scale
        for b in range(blocks):
            p = f"layer{layer + 1}.{b}"
            conv(f"{p}.conv1", cin, w, 1)
            bn(f"{p}.bn1", w)
            conv(f"{p}.conv2", w, w, 3)
            bn(f"{p}.bn2", w)
            conv(f"{p}.conv3", w, 4 * w, 1)
            bn(f"{p}.bn3", 4 * w)
            if b == 0:
                conv(f"{p}.downsample.0", cin, 4 * w, 1)
                bn(f"{p}.downsample.1", 4 * w)
            cin = 4 * w
    sd["fc.weight"] = torch.randn(1000 // scale, cin, generator=g)
    sd["fc.bias"] = torch.randn(1000 // scale, generator=g)
    return sd


def _tiny(s: Sizes) -> bool:
    return s.flat < 1 << 20


def _t1(s: Sizes) -> Prepared:
    sd = resnet50_state_dict(16 if _tiny(s) else 1)
    return Prepared(
        (
            Way(
                TORCHNP,
                "torchnp.tree_to_numpy(sd, copy=True)",
                lambda: torchnp.tree_to_numpy(sd, copy=True),
            ),
            Way(
                NUMPY,
                "{k: v.numpy().copy() for k, v in sd.items()}",
                lambda: {k: v.numpy().copy() for k, v in sd.items()},
            ),
        ),
        2 * sum(t.nbytes for t in sd.values()),
    )


def _images(s: Sizes, n: int, shape: tuple[int, ...], dtype=np.uint8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    if _tiny(s):
        n, shape = 4, tuple(max(d // 32, 1) for d in shape)
    if dtype == np.uint8:
        return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]
    return [rng.random(shape, dtype=np.float32) for _ in range(n)]


def _t2(s: Sizes) -> Prepared:
    xs = _images(s, 256, (224, 224, 3))
    return Prepared(
        (
            Way(TORCHNP, "torchnp.stack_from_numpy(xs)", lambda: torchnp.stack_from_numpy(xs)),
            Way(NUMPY, "torch.from_numpy(np.stack(xs))", lambda: torch.from_numpy(np.stack(xs))),
            Way(TORCH, "torch.tensor(np.array(xs))", lambda: torch.tensor(np.array(xs))),
        ),
        2 * sum(x.nbytes for x in xs),
    )


class _Samples(torch.utils.data.Dataset):
    """(3, 224, 224) float32 images and int labels, made once (the loader measures collate)."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.images[i], i % 10


def _epoch(loader: DataLoader) -> object:
    last = None
    for batch in loader:
        last = batch
    return last


def _loader_case(s: Sizes, workers: int) -> Prepared:
    batch = 64
    images = _images(s, 4 * batch, (3, 224, 224), np.float32)
    size = len(images) if _tiny(s) else 4 * batch
    data = _Samples(images[:size])
    kw = {"batch_size": min(batch, size), "num_workers": workers}
    if workers:
        kw.update(persistent_workers=True, multiprocessing_context="fork")
    ours = DataLoader(data, collate_fn=torchnp.collate, **kw)
    theirs = DataLoader(data, collate_fn=default_collate, **kw)
    return Prepared(
        (
            Way(TORCHNP, "DataLoader(..., collate_fn=torchnp.collate)", lambda: _epoch(ours)),
            Way(TORCH, "DataLoader(...) (default_collate)", lambda: _epoch(theirs)),
        ),
        2 * sum(x.nbytes for x in data.images),
    )


def _t3(s: Sizes) -> Prepared:
    return _loader_case(s, 0)


def _t3w(s: Sizes) -> Prepared:
    return _loader_case(s, 2)


T_CASES: tuple[Case, ...] = (
    Case("T1_state_dict_cpu", "ResNet-50-sized state_dict (320 tensors), copy=True", _t1),
    Case("T2_stack_images", "256 x (224,224,3) uint8 -> (256,224,224,3) tensor", _t2),
    Case("T3_collate", "DataLoader epoch, 4 batches of 64 x (3,224,224) f32 + labels", _t3),
    Case("T3w_collate_workers", "the same with num_workers=2 (persistent)", _t3w),
)
