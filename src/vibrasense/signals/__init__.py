"""Signals: readers for every recording format, archives, dataset layouts and a synthetic plant."""
