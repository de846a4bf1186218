"""Monitoring: drift statistics of new data against the training reference, the retrain decision and its report."""
