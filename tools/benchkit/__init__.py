"""Helpers of ``tools/bench.py``: side-by-side timing, the PyTorch reference, JAX prototypes.

Everything here measures; nothing here is used by training, so it lives beside the tool
and not in the installed ``rnn_jax`` package (imported as ``tools.benchkit`` from a
checkout; ``tools/bench.py`` puts the checkout on ``sys.path``). ``torch`` is imported only
by :mod:`tools.benchkit.torch_ref` (the ``[bench]`` extra).
"""
