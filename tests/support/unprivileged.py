"""Run a command without the privilege to ignore file modes, so a permission test means something as root.

CI runs the suite as root (a container), and root writes anywhere: a test that a read-only folder is refused would
pass for no reason or have to skip. As root, :func:`unprivileged` runs the command under ``setpriv`` (util-linux)
with ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH`` dropped from its inheritable and bounding sets: it is still
root, owner of the test's files (so it reads the interpreter, the checkout and a private temp folder as before), but
the kernel now applies the modes of a file to it as to any owner. As another user, nothing changes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

DROPPED = ("dac_override", "dac_read_search")  # the two capabilities that let root bypass read/write/search bits


def unprivileged(command: Sequence[str]) -> list[str]:
    """``command``, prefixed (as root) so that it runs without the capabilities that bypass file permissions."""
    if os.geteuid() != 0:
        return list(command)
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # fail, not skip: CI must run the permission tests
        raise RuntimeError("permission tests as root need `setpriv` (util-linux: apt-get install util-linux)")
    drop = ",".join(f"-{cap}" for cap in DROPPED)
    return [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", "--", *command]
