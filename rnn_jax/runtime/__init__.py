"""The JAX-free half of rnn-jax: load an exported ONNX model and classify images."""
