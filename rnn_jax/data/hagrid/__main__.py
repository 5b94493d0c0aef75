"""``python -m rnn_jax.data.hagrid``: the standalone landmark extraction (see :mod:`.cli`)."""

from rnn_jax.data.hagrid.cli import main
from rnn_jax.errors import main_guard

main_guard(main)
