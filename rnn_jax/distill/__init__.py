"""Distillation as pure functions: the train step and its loss terms, teachers, schedules, ensembles.

The step (:mod:`.step`) sums the terms of an :class:`.objective.Objective` chosen when it is built:
KD + CE (:mod:`.kd`), deep supervision (:mod:`.deep_supervision`), FitNets hints (:mod:`.hints`);
PS-KD (:mod:`.progressive`) only changes the targets and reads back the step's predictions.
"""
