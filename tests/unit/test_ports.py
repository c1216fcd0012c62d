"""Taken ports and what holds them, read from /proc: a table parsed by hand, and a real listener."""

import socket
import subprocess
import sys

from helpers import free_port_block

from services.cli.ports import describe_taken, port_taken, socket_inodes

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
   1: 0100007F:C350 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1
   2: 0100007F:C350 0100007F:9C41 06 00000000:00000000 03:00000F3A 00000000     0        0 0 3 0
   3: 0100007F:9C40 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 20 4 30 10 -1
"""


def test_sockets_on_a_port_are_found_by_their_local_port_only():
    # 0xC350 = 50000: the listener and the connection it accepted; not the TIME_WAIT one (no
    # inode, no owner) nor the client's end, whose *remote* port is 50000.
    assert socket_inodes(TABLE, 50000) == {4242, 4343}
    assert socket_inodes(TABLE, 40000) == {4444}
    assert socket_inodes(TABLE, 50001) == set()


def test_a_listener_is_named_with_its_pid_and_command_line():
    port = free_port_block(2)
    listener = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout.readline() == "up\n"
        assert port_taken(port) and not port_taken(port + 1)
        holder = f"pid {listener.pid}: {sys.executable} -c import socket, sys, time"
        lines = describe_taken({"gateway": port, "ingest": port + 1})
        assert len(lines) == 1 and lines[0].startswith(f"port {port} (gateway) is in use by {holder}")
    finally:
        listener.kill()
        listener.wait()
    assert describe_taken({"gateway": port}) == []


def test_a_closed_connection_in_time_wait_does_not_make_a_port_taken():
    port = free_port_block(1)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's end closes first: it waits in TIME_WAIT on the port
    client.close()
    server.close()
    assert not port_taken(port)
