"""Create any model by name and size; the one place that knows every architecture."""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from flax import nnx

from rnn_jax.errors import ConfigError
from rnn_jax.kernels.conv import CONV_BACKENDS, conv_function
from rnn_jax.models.cnn import CNN
from rnn_jax.models.landmark import LandmarkLSTM, LandmarkMLP, LandmarkTRM
from rnn_jax.models.mlp import MLP
from rnn_jax.models.motion import MotionWindow
from rnn_jax.models.resnet import ResNet
from rnn_jax.models.vit import ViT

SIZES = ("tiny", "small", "medium", "large", "xlarge")
LANDMARK_MODELS = ("lmlp", "lstm", "trm", "motion")  # take landmark features [B, T, 21, 3], not images

# name -> size -> constructor kwargs. resnet18/resnet34 are the standard CIFAR widths.
PRESETS: dict[str, dict[str, dict]] = {
    "mlp": {
        "tiny": {"hidden": (128,)},
        "small": {"hidden": (256, 128)},
        "medium": {"hidden": (512, 256)},
        "large": {"hidden": (1024, 512)},
        "xlarge": {"hidden": (2048, 1024, 512)},
    },
    "cnn": {
        "tiny": {"widths": (16, 32), "hidden": 64},
        "small": {"widths": (32, 64), "hidden": 128},
        "medium": {"widths": (32, 64, 128), "hidden": 256},
        "large": {"widths": (64, 128, 256), "hidden": 256},
        "xlarge": {"widths": (96, 192, 384), "hidden": 512},
    },
    "resnet": {
        "tiny": {"widths": (8, 16, 32), "blocks": (1, 1, 1)},
        "small": {"widths": (16, 32, 64), "blocks": (1, 1, 1)},
        "medium": {"widths": (16, 32, 64), "blocks": (2, 2, 2)},
        "large": {"widths": (32, 64, 128), "blocks": (2, 2, 2)},
        "xlarge": {"widths": (64, 128, 256), "blocks": (2, 2, 2)},
    },
    "resnet18": {"default": {"widths": (64, 128, 256, 512), "blocks": (2, 2, 2, 2)}},
    "resnet34": {"default": {"widths": (64, 128, 256, 512), "blocks": (3, 4, 6, 3)}},
    "vit": {
        "tiny": {"dim": 64, "depth": 2, "heads": 2},
        "small": {"dim": 128, "depth": 4, "heads": 4},
        "medium": {"dim": 192, "depth": 6, "heads": 3},
        "large": {"dim": 256, "depth": 8, "heads": 4},
        "xlarge": {"dim": 384, "depth": 8, "heads": 6},
    },
    # landmark models (rnn_jax/models/landmark.py); parameters at 10 classes in the comments
    "lmlp": {
        "tiny": {"hidden": (64,)},  # ~5k
        "small": {"hidden": (128, 64)},  # ~17k
        "medium": {"hidden": (256, 128)},  # ~50k
        "large": {"hidden": (512, 256)},  # ~170k
        "xlarge": {"hidden": (1024, 512)},  # ~600k
    },
    "lstm": {  # the LSTM experiment suite's range: ~0.5M (tiny) to ~35M (xxlarge)
        "tiny": {"hidden": 176, "layers": 2},
        "small": {"hidden": 256, "layers": 3},
        "medium": {"hidden": 512, "layers": 2},
        "large": {"hidden": 768, "layers": 3},
        "xlarge": {"hidden": 1024, "layers": 3},
        "xxlarge": {"hidden": 1200, "layers": 3},
    },
    "motion": {  # rnn_jax/models/motion.py: dynamic gestures from a window of motion features
        "tiny": {"window": 24, "embed": 8, "hidden": (64,)},  # ~13k
        "small": {"window": 24, "embed": 16, "hidden": (128, 64)},  # ~59k
        "medium": {"window": 24, "embed": 32, "hidden": (256, 128)},  # ~233k
    },
    "trm": {  # latent block x6, deep block x3, deep supervision lambda 0.9; small ~ S-TRM's ~79k
        "tiny": {"dim": 32},
        "small": {"dim": 60},
        "medium": {"dim": 128},
        "large": {"dim": 256},
    },
}
CLASSES = {"motion": MotionWindow, "lmlp": LandmarkMLP, "lstm": LandmarkLSTM, "trm": LandmarkTRM, "mlp": MLP, "cnn": CNN, "resnet": ResNet, "resnet18": ResNet, "resnet34": ResNet, "vit": ViT}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@dataclass(frozen=True)
class ModelSpec:
    """Which network to build. ``dtype`` is the compute dtype; parameters stay float32.

    ``conv``: which library runs the ResNets' convolutions on CPU: ``auto`` = oneDNN where its
    kernel can be built here (faster), else XLA; ``xla``; ``onednn`` (an error if unavailable).
    It changes speed, not the network: checkpoints of either load into the other.
    """

    # metadata: the experiments' flags (see rnn_jax/config.py)
    name: str = field(default="resnet", metadata={
        "flag": "--model", "help": "model name from `python -m rnn_jax.models` (default {default})"})
    size: str = field(default="small", metadata={
        "help": f"model size preset: {', '.join(SIZES)} (default {{default}})"})
    dropout: float = field(default=0.0, metadata={"help": "dropout before the classifier (noisy student)"})
    stochastic_depth: float = field(default=0.0, metadata={"help": "max drop-path rate (noisy student)"})
    dtype: str = field(default="float32", metadata={
        "choices": tuple(DTYPES), "help": "compute dtype; parameters stay float32 (bfloat16 suits recent GPUs)"})
    conv: str = field(default="auto", metadata={
        "choices": CONV_BACKENDS,
        "help": "who runs the ResNets' convolutions on CPU: auto = oneDNN when its kernel builds here "
                "(faster; needs a C++ compiler), else XLA (default {default}; GPUs always use XLA)"})
    # trm trained on streams (rnn_jax.data.streams): the window frames that carry the loss
    loss_frames: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss_frames", tuple(int(i) for i in self.loss_frames))
        if self.loss_frames and self.name != "trm":
            raise ConfigError(f"loss on several frames of a window (training streams) needs the trm; got {self.name}")
        if self.name not in PRESETS:
            raise ConfigError(f"unknown model {self.name!r}; choose from {sorted(PRESETS)}")
        sizes = PRESETS[self.name]
        if "default" in sizes:
            if self.size not in ("default", *SIZES):
                raise ConfigError(f"{self.name} has a fixed size; drop --size")
        elif self.size not in sizes:
            raise ConfigError(f"unknown size {self.size!r} for {self.name}; choose from {list(sizes)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.stochastic_depth < 1.0:
            raise ConfigError(f"stochastic depth must be in [0, 1), got {self.stochastic_depth}")
        if self.stochastic_depth and self.name in ("mlp", "cnn", *LANDMARK_MODELS):
            raise ConfigError(f"stochastic depth needs residual blocks; the {self.name} has none")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; choose from {sorted(DTYPES)}")
        if self.conv not in CONV_BACKENDS:
            raise ConfigError(f"unknown convolution backend {self.conv!r}; choose from {CONV_BACKENDS}")

    @property
    def label(self) -> str:
        return self.name if "default" in PRESETS[self.name] else f"{self.name}-{self.size}"


def model_spec(name: str, size: str = "small", **fields) -> ModelSpec:
    """A :class:`ModelSpec` for ``name`` at ``size``; fixed-size models ignore ``size``.

    Fixed-size models are those with a ``"default"`` entry in :data:`PRESETS` (such as
    resnet18): they always get size ``"default"``, so one (name, size) list can mix them
    with the sized families.
    """
    return ModelSpec(name, "default" if "default" in PRESETS.get(name, {}) else size, **fields)


def create_model(spec: ModelSpec, image_shape: tuple[int, int, int], num_classes: int,
                 seed: int = 0) -> nnx.Module:
    """A freshly initialised model; every generation calls this with its own seed."""
    sizes = PRESETS[spec.name]
    kwargs = dict(sizes.get("default") or sizes[spec.size])
    if spec.name not in ("mlp", "cnn", *LANDMARK_MODELS):
        kwargs["stochastic_depth"] = spec.stochastic_depth
    if CLASSES[spec.name] in (ResNet, CNN):
        kwargs["conv"] = conv_function(spec.conv)
    if spec.loss_frames:
        kwargs["loss_frames"] = spec.loss_frames
    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    return CLASSES[spec.name](tuple(image_shape), num_classes, **kwargs, dropout=spec.dropout,
                              dtype=DTYPES[spec.dtype], rngs=rngs)


def count_params(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def gflops_per_image(model: nnx.Module, image_shape: tuple[int, int, int]) -> float:
    """Forward GFLOPs for one image, from XLA's own cost analysis (not a hand count)."""
    was_training = _is_training(model)
    model.eval()
    # XLA's cost analysis cannot see inside the oneDNN kernel's FFI calls: count XLA's convolutions
    # (on a copy of the graph that shares the weights)
    graphdef, state = nnx.split(_with_xla_convs(nnx.merge(*nnx.split(model))))

    def forward(state, x):
        return nnx.merge(graphdef, state)(x)

    x = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    cost = jax.jit(forward).lower(state, x).compile().cost_analysis()
    if isinstance(cost, list):
        cost = cost[0]
    if was_training:
        model.train()
    return float(cost.get("flops", 0.0)) / 1e9


def _with_xla_convs(model: nnx.Module) -> nnx.Module:
    """The same model (shared state) with every convolution back on ``lax.conv_general_dilated``."""
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Conv):
            node.conv_general_dilated = jax.lax.conv_general_dilated
    return model


def _is_training(model: nnx.Module) -> bool:
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm):
            return not node.use_running_average
        if isinstance(node, nnx.Dropout):
            return not node.deterministic
    return False


def list_models() -> list[tuple[str, str]]:
    return [(name, size) for name, sizes in PRESETS.items() for size in sizes]
