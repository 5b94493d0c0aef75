"""Helpers of ``tools/bench.py``: side-by-side timing, the PyTorch reference, JAX prototypes.

Everything here measures; nothing here is used by training. ``torch`` is imported only
by :mod:`rnn_jax.bench.torch_ref` (the ``[bench]`` extra).
"""
