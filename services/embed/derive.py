"""Build the derived embedding models from the packaged one, deterministically, and check each
against its pinned sha256: `python -m services.embed.derive [--out DIR]` (run by `make setup`).

all-MiniLM-L6-v2-int8: onnxruntime's offline graph fusions (attention matrix products, skip layer
normalisation; no hardware-specific layouts), then dynamic quantisation, per channel, int8 weights.
The same input and the same pinned onnxruntime and onnx give the same bytes.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort

from services.common.tokenizer import packaged_model_path
from services.embed.catalogue import INT8, KNOWN, PACKAGED, check_known_model, derived_models_dir
from services.embed.model import file_sha256


def fuse(source: Path, target: Path) -> None:
    options = ort.SessionOptions()
    # EXTENDED, not ALL: ALL adds layouts for this CPU, and the file must be the same everywhere.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.intra_op_num_threads = 1
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def build_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="ragmesh-derive-") as tmp:
        fused = Path(tmp) / "fused.onnx"
        fuse(source, fused)
        partial = target.with_suffix(".partial")
        quantize_dynamic(fused, partial, per_channel=True, weight_type=QuantType.QInt8)
        partial.replace(target)  # whole or not at all: an interrupted build leaves no half file


def ensure_int8(models_dir: Path) -> Path:
    """Build the file unless it is there with the pinned hash; fail (and remove it) if it differs."""
    target = models_dir / f"{INT8}.onnx"
    if target.exists() and file_sha256(target) == KNOWN[INT8].sha256:
        return target
    source = packaged_model_path()
    check_known_model(PACKAGED, source, file_sha256(source))
    models_dir.mkdir(parents=True, exist_ok=True)
    build_int8(source, target)
    built = file_sha256(target)
    if built != KNOWN[INT8].sha256:
        target.unlink()
        raise RuntimeError(
            f"building {INT8} gave sha256 {built}, not the pinned {KNOWN[INT8].sha256}: "
            "onnxruntime or onnx are not the versions pyproject.toml pins"
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="folder of the derived files (default: the venv's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the quantiser's advice on pre-processing is not for this model
    try:
        path = ensure_int8(args.out or derived_models_dir())
    except RuntimeError as exc:
        print(f"derive: {exc}", file=sys.stderr)
        return 1
    print(f"{INT8}: {path} (sha256 {KNOWN[INT8].sha256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
