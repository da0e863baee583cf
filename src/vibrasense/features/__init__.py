"""Features: log-mel spectrograms, the 13 statistical features and vibration features."""
