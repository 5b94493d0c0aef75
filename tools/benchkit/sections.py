"""The benchmark's sections. Each takes a :class:`Context` and returns a :class:`Section`.

Every comparison inside a section is timed in alternating rounds in this one process
(:func:`tools.benchkit.timing.alternate`), after warm-up, as medians; the 1-minute load
average is written next to every figure. The sections live in themed modules:
:mod:`~tools.benchkit.step_sections` (one train step and its inputs),
:mod:`~tools.benchkit.run_sections` (whole runs in fresh processes),
:mod:`~tools.benchkit.deploy_sections` (the exported model), :mod:`~tools.benchkit.candidate_sections`
(candidate speed-ups), :mod:`~tools.benchkit.live_budget` and :mod:`~tools.benchkit.budget_counts`
(the hand finder's search budget: timed, and counted)
and :mod:`~tools.benchkit.profile`; what they share is in
:mod:`~tools.benchkit.context`.
"""

from __future__ import annotations

from collections.abc import Callable

from tools.benchkit.budget_counts import section_budget_counts
from tools.benchkit.candidate_sections import (
    section_batch,
    section_bf16,
    section_scan,
    section_widths,
    section_xla,
)
from tools.benchkit.context import CPU_PRESET, LIVE_MODEL, Context, torch_available
from tools.benchkit.deploy_sections import section_live, section_onnx
from tools.benchkit.hands_sections import section_hands
from tools.benchkit.live_budget import section_budget
from tools.benchkit.profile import section_parts, section_profile
from tools.benchkit.report import Section
from tools.benchkit.run_sections import (
    section_allocator,
    section_devices,
    section_generation,
    section_presets,
    section_startup,
)
from tools.benchkit.step_sections import section_data, section_peak, section_teacher, section_train

__all__ = ["CPU_PRESET", "LIVE_MODEL", "QUICK_SECTIONS", "SECTIONS", "Context", "torch_available"]

SECTIONS: dict[str, Callable[[Context], Section]] = {
    "peak": section_peak, "train": section_train, "teacher": section_teacher, "data": section_data,
    "generation": section_generation, "onnx": section_onnx, "live": section_live, "xla": section_xla,
    "bf16": section_bf16, "batch": section_batch, "widths": section_widths, "scan": section_scan,
    "startup": section_startup, "devices": section_devices, "allocator": section_allocator,
    "profile": section_profile, "parts": section_parts, "presets": section_presets,
    "hands": section_hands, "budget": section_budget, "budget-counts": section_budget_counts,
}
# what --quick runs unless --only names sections: every row issue #7 asks for, in < 3 minutes
QUICK_SECTIONS = ("peak", "train", "teacher", "data", "generation", "onnx", "live", "hands")
