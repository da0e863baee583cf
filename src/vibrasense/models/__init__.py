"""Anomaly detectors behind one interface, found by name (``get_detector("cnn-ae")``, ``list_detectors()``)."""

from vibrasense.models.base import Detector, detector_class, get_detector, list_detectors, load_detector
from vibrasense.models.threshold import fit_threshold

__all__ = ["Detector", "detector_class", "fit_threshold", "get_detector", "list_detectors", "load_detector"]
