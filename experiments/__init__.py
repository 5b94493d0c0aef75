"""Thin command-line experiments over the rnn_jax API (`python -m experiments.<name>`)."""
