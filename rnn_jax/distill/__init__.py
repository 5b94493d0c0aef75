"""Distillation pieces as pure functions: losses, schedules, plateau logic, ensembles."""
