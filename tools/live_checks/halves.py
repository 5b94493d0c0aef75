"""Two halves of a split's people, by a fixed rule: choose on one half, report the other.

Rule: a person (HaGRID ``user_id``) is in half ``A`` when the SHA-256 of their id (UTF-8) is
even, else in ``B``. It depends on the id alone (not on the order of the files or on who else
is in the split), so every tool, run and machine puts a person in the same half, and a person's
photos never fall in both halves.
"""

from __future__ import annotations

import hashlib

HALVES = ("A", "B")


def person_half(person: str) -> str:
    """``"A"`` or ``"B"`` for one person id (see the module docstring)."""
    return HALVES[int(hashlib.sha256(str(person).encode("utf-8")).hexdigest(), 16) % 2]


def other(half: str) -> str:
    """The half a choice made on ``half`` is reported on."""
    return HALVES[1 - HALVES.index(half)]
