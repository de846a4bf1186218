"""Evaluation: metrics with uncertainty, baselines, threshold, segments, explanations, the gate and the model card."""
