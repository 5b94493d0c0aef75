"""Side-by-side timing on a shared, noisy CPU: alternate candidates, take medians.

A neighbour process that loads the machine slows every candidate measured in the same
few seconds alike, so candidates are timed in alternating rounds (A B B A A B ...) inside
one process, after warm-up, and each reports the median over rounds. The load average is
recorded next to every figure.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Work = Callable[[], float]  # runs one timed block, returns the units done (images, frames, ...)


def load() -> tuple[float, float, float]:
    """The 1/5/15-minute load averages, rounded."""
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


def load_str(values: tuple[float, float, float] | None = None) -> str:
    a, b, c = values or load()
    return f"{a:.1f}/{b:.1f}/{c:.1f}"


@dataclass
class Measured:
    """Rates (units per second) of one candidate, one per round."""

    name: str
    rates: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load average per round

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median over the rounds: how noisy this figure was."""
        if len(self.rates) < 2 or not self.median:
            return 0.0
        return (max(self.rates) - min(self.rates)) / self.median

    def to_dict(self) -> dict:
        return {"median": self.median, "rates": [round(r, 3) for r in self.rates],
                "spread": round(self.spread, 3), "load1": self.loads}


def progress(message: str) -> None:
    """One progress line on stderr (the table goes to stdout)."""
    print(f"  .. {message}  [load {load_str()}]", file=sys.stderr, flush=True)


def repeats_for(one_block: Callable[[], None], target_s: float, cap: int = 200) -> int:
    """How many repetitions of ``one_block`` fill about ``target_s`` seconds (at least 1)."""
    t0 = time.perf_counter()
    one_block()
    dt = max(time.perf_counter() - t0, 1e-6)
    return int(min(cap, max(1, round(target_s / dt))))


def alternate(candidates: dict[str, Work], rounds: int, warmup: int = 1) -> dict[str, Measured]:
    """Time every candidate in alternating rounds; the order flips every round (ABBA).

    ``warmup`` untimed rounds come first (compilation, caches, thread pools).
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    out = {name: Measured(name) for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.perf_counter()
            units = candidates[name]()
            dt = time.perf_counter() - t0
            out[name].rates.append(units / dt if dt > 0 else float("nan"))
            out[name].loads.append(round(os.getloadavg()[0], 2))
    return out


def paired_ratio(a: Measured, b: Measured) -> tuple[float, float, float] | None:
    """Median and quartiles of ``a / b`` round by round.

    Each round times both back to back, so a shared machine that speeds up or slows down
    between rounds moves both alike: steadier than the ratio of the two medians.
    """
    ratios = [x / y for x, y in zip(a.rates, b.rates) if y > 0]
    if not ratios:
        return None
    if len(ratios) == 1:
        return ratios[0], ratios[0], ratios[0]
    q25, _, q75 = statistics.quantiles(ratios, n=4, method="inclusive")
    return statistics.median(ratios), q25, q75


@dataclass
class StepBench:
    """A ready-to-time train step: ``run(n)`` takes n steps and returns the images processed."""

    label: str
    batch: int
    image_size: int
    params: int
    gflops_fwd: float  # forward GFLOPs per image (XLA cost analysis)
    compile_s: float
    _run: Callable[[int], None] = field(repr=False)
    fingerprint: str = ""  # of the optimised XLA program, when compiled with explicit options

    def run(self, n: int) -> float:
        self._run(n)
        return float(n * self.batch)
