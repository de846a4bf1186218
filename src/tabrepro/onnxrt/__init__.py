"""ONNX Runtime sessions, execution providers, graph files and feeds: what training (checking its graphs) and
serving (running them) both need, and no service.

Importing it switches ONNX Runtime's telemetry off (``ORT_DISABLE_TELEMETRY``, unless the environment already says
otherwise) before any of its modules imports ONNX Runtime: training reaches ONNX Runtime through here without
importing ``tabrepro.serving``, whose ``quiet`` sets the same switch and BentoML's.
"""

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
