"""`hf:org/name`: the config.json of a model already in the local Hugging Face cache (HF_HUB_CACHE, else
HF_HOME/hub, else ~/.cache/huggingface/hub: what `from_pretrained` fills). The network is never used."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import UsageError

REPO_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")  # gpt2, openai-community/gpt2


def hub_cache() -> Path:
    """The folder transformers downloads to, from the variables huggingface_hub reads (read now, not at import)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def local_or_cached(spec: str, target: str) -> Path:
    """A local config.json or folder; else, for a name like `org/name`, its config.json in the hub cache."""
    path = Path(target)
    if path.exists() or target.endswith(".json") or not REPO_ID.fullmatch(target):
        return path  # _config says what is wrong with a local path
    cache = hub_cache()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise UsageError(f"{spec}: hf: specs need the transformers package (pip install transformers)") from None
    try:
        found = try_to_load_from_cache(target, "config.json", cache_dir=cache)  # reads files only: no network
    except ValueError as error:  # huggingface_hub's HFValidationError: not a name a repository can have ('.0')
        raise UsageError(
            f"{spec}: {target!r} is not a local file or folder, nor a Hugging Face model name: {error}"
        ) from None
    if isinstance(found, str):
        return Path(found)
    raise UsageError(
        f"{spec}: {target!r} is not a local file or folder, and the Hugging Face cache at {str(cache)!r} holds no "
        f"config.json for it (looked for models--{target.replace('/', '--')}); flopwise never downloads: fill the "
        f"cache with `hf download {target} config.json` (or from_pretrained), point HF_HUB_CACHE or HF_HOME at the "
        "cache that has it, or give the path of a config.json"
    )
