"""What `ragmesh ingest` takes from the folders it is given: nothing outside them, no hidden or
version-control files unless asked, only regular files, ids that cannot collide."""

import os

import pytest

from ragmesh_client.requests import Source, pieces
from services.cli.files import Options, PathProblem, collect, open_file


@pytest.fixture
def tree(tmp_path):
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text("aws_secret_access_key = hunter2")
    docs = tmp_path / "work" / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "README.md").write_text("# Docs")
    (docs / "guide" / "install.md").write_text("Install it.")
    (docs / ".env").write_text("TOKEN=abc")
    (docs / ".cache").mkdir()
    (docs / ".cache" / "blob.txt").write_text("cached")
    (docs / ".git").mkdir()
    (docs / ".git" / "config").write_text("[core]")
    (docs / "notes.md").symlink_to(secret)  # the classic escape
    (docs / "readme-again.md").symlink_to(docs / "README.md")  # inside: fine
    (docs / "guide-link").symlink_to(docs / "guide", target_is_directory=True)
    (docs / "guide" / "up").symlink_to(docs, target_is_directory=True)  # a loop
    (docs / "broken").symlink_to(tmp_path / "nowhere")
    os.mkfifo(docs / "pipe")
    return tmp_path, docs


def ids(found) -> list[str]:
    return [f.doc_id for f in found]


def test_by_default_nothing_leaves_the_folder_and_nothing_hidden_is_read(tree):
    _, docs = tree
    found, skipped = collect([docs], Options())
    assert ids(found) == ["docs/README.md", "docs/guide/install.md", "docs/readme-again.md"]
    assert found[2].path == docs / "README.md" and found[2].source_name == "readme-again.md"
    assert dict(skipped) == {
        str(docs / ".cache"): "hidden (--include-hidden)",
        str(docs / ".env"): "hidden (--include-hidden)",
        str(docs / ".git"): "version-control folder (--include-vcs)",
        str(docs / "broken"): "link to outside the given folders (--follow-symlinks)",
        str(docs / "guide" / "up"): "link to a folder (--follow-symlinks)",
        str(docs / "guide-link"): "link to a folder (--follow-symlinks)",
        str(docs / "notes.md"): "link to outside the given folders (--follow-symlinks)",
        str(docs / "pipe"): "not a regular file",
    }
    for item in found:
        with open_file(item.path) as stream:
            assert b"hunter2" not in stream.read()


def test_asked_for_it_gets_hidden_files_vcs_folders_and_links_without_looping(tree):
    tmp_path, docs = tree
    found, skipped = collect([docs], Options(follow_symlinks=True, include_hidden=True, include_vcs=True))
    assert ids(found) == [  # the loop (guide/up) and the second way into guide/ add nothing
        "docs/.cache/blob.txt",
        "docs/.env",
        "docs/.git/config",
        "docs/README.md",
        "docs/guide/install.md",
        "docs/notes.md",
        "docs/readme-again.md",
    ]
    assert {f.doc_id: f.path for f in found}["docs/notes.md"] == tmp_path / "home" / ".aws" / "credentials"
    assert dict(skipped) == {str(docs / "broken"): "broken link", str(docs / "pipe"): "not a regular file"}


def test_two_folders_with_a_readme_keep_both_and_a_named_file_is_taken(tree, tmp_path):
    _, docs = tree
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.md").write_text("# Other")
    found, _ = collect([docs, other, docs / ".env"], Options())
    assert ids(found) == ["docs/README.md", "docs/guide/install.md", "docs/readme-again.md", "other/README.md", ".env"]


def test_ids_that_would_collide_are_refused_before_anything_is_sent(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "docs").mkdir(parents=True)
        (tmp_path / name / "docs" / "README.md").write_text(name)
    with pytest.raises(PathProblem, match="would both be doc_id 'docs/README.md'"):
        collect([tmp_path / "a" / "docs", tmp_path / "b" / "docs"], Options())
    with pytest.raises(PathProblem, match="does not exist"):
        collect([tmp_path / "missing"], Options())


def test_a_file_is_read_in_pieces_and_a_file_swapped_for_a_link_is_refused(tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 10000)  # 2.44 MiB
    with open_file(data) as stream:
        stream.read(100)  # the check for a PDF's first bytes
        stream.seek(0)
        upload = Source(stream)  # what `ragmesh ingest` hands the client
        for _ in range(2):  # a retried upload reads it again from the start
            with upload.open() as body:
                assert [len(p) for p in pieces(body)] == [1 << 20, 1 << 20, 2560000 - (2 << 20)]
    data.unlink()
    data.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text("secret")
    with pytest.raises(OSError):
        open_file(data)
