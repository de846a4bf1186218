"""Serving: the ONNX runtime wrapper (no pandas, no scikit-learn) and the BentoML service around it.

Importing it switches telemetry off (``quiet``): first, before any of its modules imports ONNX Runtime.
"""

from tabrepro.serving.quiet import switch_telemetry_off

switch_telemetry_off()
