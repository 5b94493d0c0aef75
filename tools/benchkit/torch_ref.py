"""The PyTorch reference: the same architectures in plain eager PyTorch, and "the PyTorch-project way".

Only the benchmark imports this (``pip install rnn-jax[bench]`` brings ``torch``).

- :class:`TorchResNet` / :class:`TorchMLP` mirror :mod:`rnn_jax.models.resnet` and
  :mod:`rnn_jax.models.mlp` layer for layer (same widths, strides, BatchNorm momentum,
  normalisation inside the model, mean pooling, linear head), built from the registry's
  own presets, so a JAX/PyTorch ratio compares one architecture.
- :class:`TorchTrainer` is the same KD train step: ``alpha * KL(T) * T^2 + (1 - alpha) * CE``,
  AdamW, one optimizer step per batch.
- :func:`pytorch_project_lineage` trains generations the way the earlier PyTorch project
  did: a ``Dataset`` that decodes every JPEG with OpenCV each time it is read (every
  epoch), a ``DataLoader``, the teacher's forward pass on every training batch, a
  validation pass (decoding again) and a ``torch.save`` of the best weights every epoch.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnn_jax.models.registry import PRESETS
from rnn_jax.models.resnet import stem_stride_for
from rnn_jax.preprocess import PIXEL_OFFSET, PIXEL_SCALE, prepare, read_image

Log = Callable[[str], None]


def setup_threads(threads: int | None = None) -> int:
    """Use every core for intra-op work (PyTorch's default on Linux, made explicit)."""
    import os

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def _bn(features: int) -> nn.BatchNorm2d:
    # flax momentum 0.9 (weight of the old value) == torch momentum 0.1 (weight of the new one)
    return nn.BatchNorm2d(features, eps=1e-5, momentum=0.1)


class TorchBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _bn(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), _bn(cout))
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class TorchResNet(nn.Module):
    """NCHW float 0..255 in, logits out; the same graph as :class:`rnn_jax.models.resnet.ResNet`.

    (PyTorch pads a strided 3x3 "SAME" convolution symmetrically where XLA pads 0/1; the
    FLOPs and shapes are identical, which is all a speed comparison needs.)
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, widths: Sequence[int],
                 blocks: Sequence[int]):
        super().__init__()
        stride = stem_stride_for(image_shape[0])
        self.stem = nn.Conv2d(image_shape[2], widths[0], 3, min(stride, 2), 1, bias=False)
        self.stem_bn = _bn(widths[0])
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if stride == 4 else None
        layers, cin = [], widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks)):
            for i in range(count):
                layers.append(TorchBasicBlock(cin, width, 2 if (i == 0 and stage > 0) else 1))
                cin = width
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x / PIXEL_SCALE - PIXEL_OFFSET)))
        if self.stem_pool is not None:
            x = self.stem_pool(x)
        return self.head(self.blocks(x).mean(dim=(2, 3)))


class TorchMLP(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, hidden: Sequence[int]):
        super().__init__()
        sizes = (image_shape[0] * image_shape[1] * image_shape[2], *hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.head = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the JAX MLP flattens NHWC; flattening NCHW has the same cost
        x = (x / PIXEL_SCALE - PIXEL_OFFSET).flatten(1)
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.head(x)


def has_reference(name: str) -> bool:
    return name in ("mlp", "resnet", "resnet18", "resnet34")


def create_torch_model(name: str, size: str, image_shape: tuple[int, int, int], num_classes: int,
                       seed: int = 0, widths: Sequence[int] | None = None) -> nn.Module:
    """The PyTorch twin of ``registry.create_model(ModelSpec(name, size), ...)`` (no ViT twin)."""
    torch.manual_seed(seed)
    sizes = PRESETS[name]
    kwargs = dict(sizes.get("default") or sizes[size])
    if name == "mlp":
        return TorchMLP(image_shape, num_classes, kwargs["hidden"])
    if name in ("resnet", "resnet18", "resnet34"):
        return TorchResNet(image_shape, num_classes, widths or kwargs["widths"], kwargs["blocks"])
    raise ValueError(f"no PyTorch reference for {name!r}")


def kd_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, alpha: float,
            temperature: float) -> torch.Tensor:
    """The loss of :func:`rnn_jax.distill.losses.kd_loss` (both terms always computed, as in JAX)."""
    ce = F.cross_entropy(logits, labels)
    t = temperature
    kl = F.kl_div(F.log_softmax(logits / t, dim=1), F.softmax(teacher_logits / t, dim=1),
                  reduction="batchmean") * t * t
    return alpha * kl + (1.0 - alpha) * ce


class TorchTrainer:
    """One KD train step in eager PyTorch: forward, loss, backward, AdamW step."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 5e-4,
                 alpha: float = 0.0, temperature: float = 4.0,
                 lr_lambda: Callable[[int], float] | None = None):
        self.model = model.train()
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda) if lr_lambda else None
        self.alpha, self.temperature = alpha, temperature

    def step(self, images: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(images)
        loss = kd_loss(logits, labels, teacher_logits, self.alpha, self.temperature)
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return loss.detach()


def nhwc_to_torch(images: np.ndarray) -> torch.Tensor:
    """uint8/float NHWC numpy -> float32 NCHW tensor (what a DataLoader hands over)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2)))


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The multiplier of :func:`rnn_jax.distill.schedules.learning_rate_schedule`, for LambdaLR."""
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


# ------------------------------------------------------------------ the PyTorch-project way
class JpegFolderDataset(torch.utils.data.Dataset):
    """Decodes the JPEG on every access (no cache), resizes, and augments per item."""

    def __init__(self, items: Sequence[tuple[Path, int]], size: int, augment: bool, seed: int = 0):
        self.items, self.size, self.augment = list(items), size, augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        image = prepare(read_image(path, 3), self.size, "full")
        if self.augment:  # pad-and-crop shift + horizontal flip, as augment="basic"
            pad = max(1, self.size // 8)
            padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            y, x = self.rng.integers(0, 2 * pad + 1, size=2)
            image = padded[y:y + self.size, x:x + self.size]
            if self.rng.random() < 0.5:
                image = image[:, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
        return tensor, label


def _evaluate(model: nn.Module, loader: torch.utils.data.DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += int((model(images).argmax(1) == labels).sum())
            total += len(labels)
    model.train()
    return correct / max(total, 1)


def pytorch_project_lineage(train_items: Sequence[tuple[Path, int]], val_items: Sequence[tuple[Path, int]],
                            image_size: int, num_classes: int, *, name: str = "resnet", size: str = "small",
                            gens: int = 2, epochs: int = 10, batch_size: int = 32, lr: float = 2e-3,
                            alpha: float = 0.7, temperature: float = 4.0, seed: int = 0,
                            log: Log = print) -> dict:
    """Train ``gens`` generations the earlier project's way; returns per-generation timings and accuracy."""
    shape = (image_size, image_size, 3)
    train_ds = JpegFolderDataset(train_items, image_size, augment=True, seed=seed)
    val_ds = JpegFolderDataset(val_items, image_size, augment=False)
    generator = torch.Generator().manual_seed(seed)
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=True,
                                               num_workers=0, generator=generator)
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=256, shuffle=False, num_workers=0)
    steps_per_epoch = len(train_ds) // batch_size
    total = steps_per_epoch * epochs
    teacher: nn.Module | None = None
    out: dict = {"generations": []}
    with tempfile.TemporaryDirectory(prefix="bench_torch_lineage_") as work:
        for gen in range(gens):
            t0 = time.perf_counter()
            model = create_torch_model(name, size, shape, num_classes, seed=seed * 1000 + gen)
            trainer = TorchTrainer(model, lr=lr, alpha=alpha if teacher is not None else 0.0,
                                   temperature=temperature,
                                   lr_lambda=warmup_cosine(total, int(0.5 * steps_per_epoch)))
            best, best_path = -1.0, Path(work) / f"gen_{gen}.pt"
            zeros = torch.zeros(batch_size, num_classes)
            for epoch in range(epochs):
                for images, labels in train_loader:
                    if teacher is not None:
                        with torch.no_grad():
                            target = teacher(images)
                    else:
                        target = zeros
                    trainer.step(images, labels, target)
                acc = _evaluate(model, val_loader)
                if acc > best:
                    best = acc
                    torch.save(model.state_dict(), best_path)
                log(f"pytorch-way gen {gen} epoch {epoch + 1}/{epochs}: val acc {acc:.4f}")
            model.load_state_dict(torch.load(best_path))
            teacher = copy.deepcopy(model).eval()
            out["generations"].append({"gen": gen, "val_acc": best, "time_s": time.perf_counter() - t0})
    return out


def build_torch_step(name: str, size: str, image_size: int, batch: int, *, classes: int = 10,
                     teacher: bool = False, n_batches: int = 4, seed: int = 0,
                     widths: Sequence[int] | None = None, frozen_conv_kernels: bool = False):
    """The PyTorch twin of :func:`tools.benchkit.jax_steps.build_step` on the same random batches.

    ``teacher=True``: the PyTorch project's teacher forward (``no_grad``, eval mode) on
    every batch. ``frozen_conv_kernels``: no gradients for convolution kernels (to measure
    what they cost). Returns a :class:`tools.benchkit.timing.StepBench`.
    """
    from tools.benchkit.jax_steps import random_images
    from tools.benchkit.timing import StepBench

    shape = (image_size, image_size, 3)
    model = create_torch_model(name, size, shape, classes, seed=seed, widths=widths)
    params = sum(p.numel() for p in model.parameters())
    if frozen_conv_kernels:
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.requires_grad_(False)
    trainer = TorchTrainer(model, alpha=0.7 if teacher else 0.0)
    tmodel = create_torch_model(name, size, shape, classes, seed=seed + 7, widths=widths).eval() if teacher else None
    images = [nhwc_to_torch(random_images(batch, image_size, seed=seed + i)) for i in range(n_batches)]
    labels = [torch.from_numpy(np.random.default_rng(seed + i).integers(0, classes, batch)) for i in range(n_batches)]
    zeros = torch.zeros(batch, classes)

    def run(steps: int) -> None:
        for i in range(steps):
            j = i % n_batches
            if tmodel is not None:
                with torch.no_grad():
                    target = tmodel(images[j])
            else:
                target = zeros
            trainer.step(images[j], labels[j], target)

    t0 = time.perf_counter()
    run(1)
    return StepBench(f"torch:{name}-{size}", batch, image_size, params, float("nan"), time.perf_counter() - t0, run)
