"""Child processes that end with the supervisor that started them, however it ends.

A supervisor killed by SIGKILL (or with its process group, after a timeout) runs no code of its
own, so only the kernel can stop its children: Linux's PR_SET_PDEATHSIG. A child is started
through this module (`python -m services.cli.children PARENT_PID COMMAND...`), which arms the
signal and then execs COMMAND in its own place: the same pid, and the signal survives the exec
(nats-server, a Go binary, included). Not armed in a `preexec_fn`: that makes subprocess fork()
rather than vfork(), which runs gRPC's fork handlers in a supervisor busy with gRPC threads, and
a child was seen to abort in them before its exec."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def dying_with_parent(command: list[str]) -> list[str]:
    """`command`, started so that the kernel SIGKILLs it when the thread that starts it ends:
    start children from the main thread, which lives as long as the supervisor. SIGKILL because
    nothing can hold it up (a busy or stopped process may ignore SIGTERM for as long as it likes)
    and every ragmesh process is built to lose nothing to it. Unchanged where there is no prctl."""
    if _PRCTL is None:
        return command
    return [sys.executable, "-m", "services.cli.children", str(os.getpid()), *command]


def main(argv: list[str]) -> None:
    parent, command = int(argv[0]), argv[1:]
    if _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise SystemExit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:  # the parent ended before the signal was armed
        raise SystemExit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
