"""The embedding models known by name: the packaged one and those derived from it at set-up.

Each is pinned by the sha256 of its ONNX file, so every replica serving a name serves the same
weights (the model id carries the hash) and a file that differs is refused, not served.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from services.common.tokenizer import packaged_model_path

PACKAGED = "all-MiniLM-L6-v2"
# Dynamically quantised: int8 weights and int8 matrix products (the packaged file stores int8
# weights but computes in float32). Built by `python -m services.embed.derive`.
INT8 = "all-MiniLM-L6-v2-int8"


@dataclass(frozen=True)
class KnownModel:
    name: str
    sha256: str
    derived: bool  # built at set-up from the packaged file, never shipped or committed
    one_text_per_run: bool  # activations quantised per run: batching would make texts change each other


KNOWN = {
    PACKAGED: KnownModel(PACKAGED, "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6", False, False),
    INT8: KnownModel(INT8, "8f94809142b62be396cf8ce4dddb821417b079165071f385586e4d7101b8e74a", True, True),
}


def derived_models_dir() -> Path:
    """Beside the installed packages (the venv, or the image's /opt/ragmesh): made by set-up."""
    return Path(sys.prefix) / "share" / "ragmesh" / "models"


def known_model(name: str) -> KnownModel:
    if name not in KNOWN:
        raise ValueError(
            f"embedding model {name!r} is not known: use one of {', '.join(sorted(KNOWN))}, "
            "or give its file with RAGMESH_MODEL_PATH"
        )
    return KNOWN[name]


def known_model_path(name: str, models_dir: Path | None = None) -> Path:
    if not known_model(name).derived:
        return packaged_model_path()
    return (models_dir or derived_models_dir()) / f"{name}.onnx"


def check_known_model(name: str, path: Path, sha256: str) -> None:
    """Refuse a file that is missing or is not the one the name is pinned to."""
    expected = KNOWN[name].sha256
    if sha256 != expected:
        raise RuntimeError(
            f"{path} has sha256 {sha256}, but {name} is pinned to {expected}: "
            "run `make setup` (or `python -m services.embed.derive`) to build it again"
        )


def served_names(models: str, default: str) -> list[str]:
    """The names of the models one embed service serves, the default first: `models` (comma
    separated) or, when empty, `default` alone. Every name must be known; none twice."""
    names = [n.strip() for n in models.split(",") if n.strip()] or [default]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"embedding models named more than once: {', '.join(repeated)}")
    for name in names:
        known_model(name)
    return names
