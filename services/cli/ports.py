"""Which of the ports a local system needs are taken, and by what (from /proc on Linux)."""

import os
import socket
from pathlib import Path

PROC = Path("/proc")


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding `port` fails the way a server's bind would. SO_REUSEADDR, as the servers
    set it: connections of an earlier run left in TIME_WAIT do not make the port taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def socket_inodes(table: str, port: int) -> set[int]:
    """Inodes of the sockets bound to local `port` in the text of /proc/net/tcp or /proc/net/tcp6."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        inode = int(fields[9])
        if local_port == port and inode:
            inodes.add(inode)
    return inodes


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or "?"


def holders(port: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process with a socket on local `port` that this user can see."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            inodes |= socket_inodes((PROC / "net" / table).read_text(), port)
        except OSError:
            pass
    if not inodes:
        return []
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                    found.append((int(entry.name), command_line(int(entry.name))))
                    break
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return sorted(found)


def describe_taken(ports: dict[str, int], host: str = "127.0.0.1") -> list[str]:
    """One line for each port in use (keyed by what it is for), naming what holds it."""
    lines = []
    for use, port in sorted(ports.items(), key=lambda item: item[1]):
        if not port_taken(port, host):
            continue
        found = holders(port)
        held = "; ".join(f"pid {pid}: {command}" for pid, command in found) or "a process this user cannot see"
        lines.append(f"port {port} ({use}) is in use by {held}")
    return lines
