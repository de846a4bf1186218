"""Outcomes: labels that arrive after the predictions, joined to them; live performance; concept drift; A/B."""
