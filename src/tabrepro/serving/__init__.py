"""Serving: the ONNX runtime wrapper (no pandas, no scikit-learn) and the BentoML service around it."""
