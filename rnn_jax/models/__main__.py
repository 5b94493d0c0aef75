"""`python -m rnn_jax.models`: every model and size with its parameters and GFLOPs per image."""

from __future__ import annotations

import argparse

from rnn_jax.errors import main_guard
from rnn_jax.models.registry import (
    LANDMARK_MODELS,
    ModelSpec,
    count_params,
    create_model,
    gflops_per_image,
    list_models,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rnn_jax.models", description=__doc__)
    parser.add_argument("--image-size", type=int, default=32, help="square input side (default 32)")
    parser.add_argument("--channels", type=int, default=3, help="input channels (default 3)")
    parser.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    args = parser.parse_args(argv)
    shape = (args.image_size, args.image_size, args.channels)
    print(f"{'model':<10} {'size':<8} {'params':>12} {'GFLOPs/img':>11}   (input {shape})")
    for name, size in list_models():
        input_shape = (1, 21, 3) if name in LANDMARK_MODELS else shape  # landmark models: one frame
        model = create_model(ModelSpec(name, size), input_shape, args.classes)
        note = "   (21 landmarks)" if name in LANDMARK_MODELS else ""
        print(f"{name:<10} {size:<8} {count_params(model):>12,} {gflops_per_image(model, input_shape):>11.4f}{note}")


if __name__ == "__main__":
    main_guard(main)
