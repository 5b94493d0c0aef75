"""Model registry: ``create_model(ModelSpec("resnet", "small"), image_shape, num_classes)``."""

from rnn_jax.models.registry import (
    PRESETS,
    SIZES,
    ModelSpec,
    count_params,
    create_model,
    gflops_per_image,
    list_models,
)

__all__ = ["PRESETS", "SIZES", "ModelSpec", "count_params", "create_model", "gflops_per_image", "list_models"]
