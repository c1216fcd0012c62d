"""What `ragmesh up` prints after `ready`: commands that reach this system from another terminal."""

import shlex
import sys
from pathlib import Path

from services.cli.welcome import EXAMPLE_FOLDER, command_name, next_steps


def test_the_command_is_named_as_a_newcomer_would_type_it(tmp_path):
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    script = venv / "ragmesh"
    script.write_text("#!/bin/sh\n")
    # `make run` runs .venv/bin/ragmesh, which another terminal does not have on PATH.
    assert command_name(str(script), on_path=None, cwd=tmp_path) == ".venv/bin/ragmesh"
    assert command_name(str(script), on_path="/usr/local/bin/ragmesh", cwd=tmp_path) == ".venv/bin/ragmesh"
    # On PATH (an activated venv, a pipx install): the bare name.
    assert command_name(str(script), on_path=str(script), cwd=tmp_path) == "ragmesh"
    # Run from elsewhere: the full path.
    assert command_name(str(script), on_path=None, cwd=tmp_path / "elsewhere") == str(script)
    # `python -m services.cli`: the same interpreter.
    module = f"{shlex.quote(sys.executable)} -m services.cli"
    assert command_name("/src/services/cli/__main__.py", on_path=None) == module


def test_next_steps_name_the_data_dir_only_when_other_commands_would_not_find_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = next_steps(tmp_path / ".ragmesh", "ragmesh", environ={})
    assert lines[1].startswith(f"  ragmesh ingest {EXAMPLE_FOLDER} --public --wait")
    assert lines[2].startswith("  ragmesh ask 'How do we rotate the on-call schedule?'   #")
    assert lines[3].startswith("  ragmesh trace --last   #")
    data = tmp_path / ".ragmesh"
    assert lines[4] == f"logs: {data / 'logs'}/<service>.log   traces: {data / 'traces' / 'spans.jsonl'}"
    elsewhere = Path("/srv/rag data")
    lines = next_steps(elsewhere, "ragmesh", environ={})
    assert lines[1].startswith(f"  ragmesh ingest {EXAMPLE_FOLDER} --data-dir '/srv/rag data' --public --wait")
    assert lines[3].startswith("  ragmesh trace --last --data-dir '/srv/rag data'   #")
    # RAGMESH_DATA_DIR already points there: the commands find it.
    assert "--data-dir" not in "".join(next_steps(elsewhere, "ragmesh", environ={"RAGMESH_DATA_DIR": str(elsewhere)}))
