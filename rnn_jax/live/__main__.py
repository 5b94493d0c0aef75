"""``python -m rnn_jax.live --onnx student.onnx``: see ``--help`` (logic in rnn_jax.live.cli)."""

from rnn_jax.errors import main_guard
from rnn_jax.live.cli import main

main_guard(main)
