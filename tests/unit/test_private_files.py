"""Local state is private: folders 0700, secret files 0600 from the moment they exist, written whole."""

import os
import stat
import threading
from pathlib import Path

from services.cli import local
from services.cli.private import create_private, private_folder, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_are_owner_only_even_when_they_existed(tmp_path):
    assert mode(private_folder(tmp_path / "a" / "b")) == 0o700
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    os.chmod(wide, 0o755)
    assert mode(private_folder(wide)) == 0o700


def test_secret_files_never_exist_with_wider_permissions(tmp_path):
    """Every file seen in the folder, at any moment, is 0600 (watched from another thread while
    files are made and replaced)."""
    seen: set[int] = set()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for entry in os.scandir(tmp_path):
                try:
                    seen.add(stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode))
                except FileNotFoundError:
                    pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for round_ in range(600):
            write_private(tmp_path / f"keys-{round_ % 7}.json", f"{round_}" * 100)
            create_private(tmp_path / f"admin-{round_}.key", "rmk_secret\n")
    finally:
        stop.set()
        watcher.join()
    assert seen == {0o600}
    assert (tmp_path / "keys-5.json").read_text() == "593" * 100  # its last round: 593 % 7 == 5
    assert len(list(tmp_path.iterdir())) == 607


def test_create_private_keeps_the_first(tmp_path):
    assert create_private(tmp_path / "admin.key", "first\n") is True
    assert create_private(tmp_path / "admin.key", "second\n") is False
    assert (tmp_path / "admin.key").read_text() == "first\n" and list(tmp_path.iterdir()) == [tmp_path / "admin.key"]


def test_the_data_dir_of_ragmesh_up_is_private(tmp_path):
    data = tmp_path / "data"
    key = local.admin_key(data)
    passwords = local.nats_passwords(data)
    assert key.startswith("rmk_") and local.admin_key(data) == key
    assert set(passwords) == {"gateway", "ingest", "retrieve"} and len(set(passwords.values())) == 3
    assert local.nats_passwords(data) == passwords
    assert mode(data) == 0o700
    assert {p.name: mode(p) for p in data.iterdir()} == {"admin.key": 0o600, "nats-users.json": 0o600}
