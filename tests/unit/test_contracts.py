"""Generated code is built from protos/, never edited: regenerate and compare; buf lint is clean."""

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "services" / "common" / "gen"


def test_generated_code_matches_the_protos(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), str(tmp_path)], check=True)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(GENERATED) for p in GENERATED.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    assert fresh == committed, "generated files differ from protos/: run `make proto`"
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, GENERATED / p, shallow=False)]
    assert not stale, f"stale or hand-edited generated code: {stale}; run `make proto`"


def test_buf_lint_is_clean():
    buf = Path(sys.executable).parent / "buf"
    result = subprocess.run([str(buf), "lint", "protos"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
