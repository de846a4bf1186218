"""Nothing phones home, however the service is started: the switches are set before anything acts on them.

``bentoml serve tabrepro.serving.service:TabreproService`` and ``bentoml serve <bento tag>`` both import the
service in the ``bentoml serve`` process itself, before BentoML sends its start-up event (``track_serve``) and, at
exit, its CLI event. BentoML reads ``BENTOML_DO_NOT_TRACK`` through a cached function (``usage_stats.do_not_track``)
that its CLI has already called by then, with the user's environment: setting the variable alone came too late (the
service looked up ``t.bentoml.com`` at start and at shutdown). So importing ``tabrepro.serving`` (any module of it,
before ONNX Runtime is imported by ``runtime``) calls ``switch_telemetry_off``: each switch set unless the
environment says otherwise (a user who sets ``BENTOML_DO_NOT_TRACK=False`` opts in), and BentoML's cached answer
forgotten, so that every later question (the start-up event, the CLI's event at exit, each worker, which inherits
the environment) gets the new one. The bento's ``envs`` and the Makefile set the same switches.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

# ONNX Runtime 1.31 otherwise resolves mobile.events.data.microsoft.com; the OpenTelemetry SDK in a BentoML 1.4.40
# worker kept ~4.8 KB per request (measured), so it is off too.
SWITCHES = {"BENTOML_DO_NOT_TRACK": "True", "ORT_DISABLE_TELEMETRY": "1", "OTEL_SDK_DISABLED": "true"}
_BENTOML_USAGE = "bentoml._internal.utils.analytics.usage_stats"  # bentoml is pinned; a test checks the effect


def switch_telemetry_off(env: MutableMapping[str, str] = os.environ) -> None:
    """Set each switch in ``env`` unless already set; make an already imported BentoML read its switch again."""
    for name, value in SWITCHES.items():
        env.setdefault(name, value)
    usage = sys.modules.get(_BENTOML_USAGE)  # not imported yet: BentoML will read the environment as it is now
    if usage is not None:
        usage.do_not_track.cache_clear()
