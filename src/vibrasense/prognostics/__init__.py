"""Bearing prognostics and diagnosis: health index, early warning, remaining useful life, which defect."""

from vibrasense.prognostics.diagnosis import Diagnosis, diagnose

__all__ = ["Diagnosis", "diagnose"]
