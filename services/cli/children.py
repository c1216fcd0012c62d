"""Child processes that end with the supervisor that started them, however it ends.

A supervisor killed by SIGKILL (or with its process group, after a timeout) runs no code of its
own, so only the kernel can stop its children: Linux's PR_SET_PDEATHSIG, armed in the child
between fork and exec, survives the exec (nats-server, a Go binary, included)."""

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved before any fork: between fork and exec the child only calls it.
_PRCTL = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` after which the kernel SIGKILLs the child when the thread that started it
    ends: start children from the main thread, which lives as long as the supervisor. SIGKILL
    because nothing can hold it up (a busy or stopped process ignores SIGTERM for as long as it
    likes) and every ragmesh process is built to lose nothing to it. None where there is no prctl."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm
