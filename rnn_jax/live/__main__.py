"""``python -m rnn_jax.live --onnx student.onnx``: see ``--help`` (logic in rnn_jax.live.cli)."""

from rnn_jax.live.cli import main

raise SystemExit(main())
