"""Comparative studies: token importance across tasks, prompt structures and models."""

from .runner import StudyConfig, StudyReport, run_study
from .spec import PART_NAMES, StudyRow, read_study

__all__ = ["PART_NAMES", "StudyConfig", "StudyReport", "StudyRow", "read_study", "run_study"]
