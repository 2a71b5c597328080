"""Real-time scheduling for the threads of a live host (and of the live benchmark)."""

from __future__ import annotations

import os


def set_sched_fifo(priority: int | None) -> bool:
    """Run the calling thread under SCHED_FIFO at ``priority`` (1..99), or back under
    SCHED_OTHER for ``None``. Returns False where the OS refuses (no privilege, not Linux):
    callers go on without it, only with more jitter."""
    try:
        if priority is not None:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return True
    except (AttributeError, OSError):  # PermissionError is an OSError
        return False
