"""Drift monitoring: recent features, scores and sensors against the model's training reference."""
