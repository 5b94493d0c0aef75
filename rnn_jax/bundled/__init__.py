"""A trained model in the box: the HaGRID landmark model ``python -m rnn_jax.live`` runs without ``--onnx``.

``hagrid_landmarks.onnx`` is an 18-gesture + ``no_gesture`` landmark model (21 hand landmarks in,
from the hand finder that tools/build_hand_models.py builds) trained on the HaGRID sample; its
file carries the reject rule (softmax temperature and threshold) it was shipped with.
``hagrid_landmarks.json`` says how it was made and chosen, with the figures and their commands.
Trained on HaGRID (Kapitanov et al.), whose licence is a variant of CC BY-SA 4.0: see
``ATTRIBUTION-HaGRID.txt`` beside it. JAX-free: a file path, nothing more.
"""

from __future__ import annotations

from pathlib import Path

MODEL_FILE = "hagrid_landmarks.onnx"
CARD_FILE = "hagrid_landmarks.json"
ATTRIBUTION_FILE = "ATTRIBUTION-HaGRID.txt"


def bundled_model() -> Path:
    """Path of the bundled HaGRID landmark model (installed as package data)."""
    return Path(__file__).resolve().parent / MODEL_FILE
