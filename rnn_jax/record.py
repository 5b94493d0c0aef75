"""Old name of :mod:`rnn_jax.capture` (the camera recorder), kept so ``python -m rnn_jax.record`` still runs.

New code and docs use ``python -m rnn_jax.capture``.
"""

from __future__ import annotations

from rnn_jax.capture import main
from rnn_jax.errors import main_guard

__all__ = ["main"]

if __name__ == "__main__":
    main_guard(main)
