"""An unlearning run's output folder: who the run is, and that the folder is its own.

A run's identity is what determines its result: the method and resolved configuration, the
model's files, the data's records (and image bytes), how many processes share the batch and the
code (package versions). It is stored in `run.json` with the run's status (running, complete,
failed). `claim_output_dir` takes the folder for one run:

- a new or empty folder is taken;
- a folder holding another run is refused, unless `overwrite` (its contents are removed first,
  so a failed rerun never leaves the old model beside the new configuration) or `resume` of the
  same identity (a different identity is refused, naming every setting that differs);
- a folder holding files that are not an mmunlearn run is refused even with `overwrite`: what
  mmunlearn did not write, it does not delete;
- while the run writes, an advisory lock (`.mmunlearn.lock`) keeps a second run out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.errors import UserValueError
from mmunlearn.evaluation.suite import hash_directory, hash_examples
from mmunlearn.io import atomic_write_json
from mmunlearn.models.sources import resolve_model
from mmunlearn.training.config import UnlearnConfig, to_dict
from mmunlearn.training.run import environment, world_size

LOCK = ".mmunlearn.lock"
RUN_FILE = "run.json"
# How a run is watched, not what it computes: these may change on resume.
WATCHING = ("train.save_steps", "train.logging_steps", "train.report_to")


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-3}} → {"train.lr": 1e-3}."""
    flat = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{path}.")
        else:
            flat[path] = value
    return flat


def run_identity(
    config: UnlearnConfig,
    model_path: str | Path,
    examples: list[Example],
    benchmark: str,
    data_options: dict[str, str],
) -> dict[str, Any]:
    """What determines the result of unlearning `model_path` on `examples` with `config`."""
    settings = {k: v for k, v in flatten(to_dict(config)).items() if k not in WATCHING}
    return json.loads(
        json.dumps(
            {
                "config": settings,
                "model": hash_directory(resolve_model(model_path)),
                "data": hash_examples(examples),
                "benchmark": benchmark,
                "data_options": dict(sorted(data_options.items())),
                "processes": world_size(),
                "code": environment()["packages"],  # the code: package versions
            },
            default=str,
        )
    )


def fingerprint(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def identity_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Each part of two identities that differs, as `what: there vs now`."""
    differences = []
    for section in sorted(set(stored) | set(current)):
        old, new = stored.get(section), current.get(section)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    name = key if section == "config" else f"{section}.{key}"
                    differences.append(f"{name}: {old.get(key)!r} there vs {new.get(key)!r} now")
        elif section in ("model", "data"):
            what = "weights/files" if section == "model" else "records/images"
            differences.append(
                f"{section}: other {what} (sha256 {str(old)[:12]}… there vs {str(new)[:12]}… now)"
            )
        else:
            differences.append(f"{section}: {old!r} there vs {new!r} now")
    return differences


def read_run(output_dir: Path) -> dict[str, Any] | None:
    """The folder's run record, or None where it holds none."""
    path = output_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserValueError(
            f"{path}: not a valid run record ({error}); the folder's run cannot be told apart "
            "from another: pass --overwrite to replace it, or choose another --output-dir"
        ) from None


def write_run(output_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(output_dir / RUN_FILE, record)


def mark_run(output_dir: Path, status: str, **details: Any) -> None:
    """Set the status of the folder's run (complete, failed) and any details (its reason)."""
    record = read_run(output_dir) or {}
    write_run(output_dir, {**record, "status": status, **details})


def contents(output_dir: Path) -> list[str]:
    return sorted(p.name for p in output_dir.iterdir() if p.name != LOCK)


def describe(record: dict[str, Any]) -> str:
    config = record.get("config", {})
    steps = config.get("train", {}).get("steps")
    return f"method {config.get('method')!r}, {steps} steps, {record.get('status', 'unknown')}"


def refuse_foreign(output_dir: Path, record: dict[str, Any] | None) -> None:
    """A folder that holds files, but no mmunlearn run: never written into, never cleared."""
    if record is None and output_dir.is_dir() and contents(output_dir):
        found = contents(output_dir)
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise UserValueError(
            f"--output-dir {output_dir}: holds files that are not an mmunlearn run ({shown}); "
            "choose a new or empty folder (mmunlearn does not replace files it did not write)"
        )


@contextlib.contextmanager
def folder_lock(output_dir: Path) -> Iterator[None]:
    """Hold the folder's advisory lock; a folder another process holds is refused."""
    handle = open(output_dir / LOCK, "a+")  # noqa: SIM115 — held open while the run writes
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserValueError(
                f"--output-dir {output_dir}: another run is writing there ({holder}); wait for "
                "it to finish or choose another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def claim_output_dir(
    output_dir: Path,
    identity: dict[str, Any],
    record: dict[str, Any],
    resume: bool,
    overwrite: bool,
) -> Iterator[None]:
    """Own `output_dir` for the run `identity` (see the module's docstring) while the block runs.

    `record`: what run.json will hold besides the identity (the config, the inputs).
    """
    if resume and overwrite:
        raise UserValueError("--resume and --overwrite exclude each other; give one of them")
    refuse_foreign(output_dir, read_run(output_dir))  # before anything is created there
    if resume and read_run(output_dir) is None:
        raise UserValueError(f"--resume: {output_dir} holds no run to resume (no {RUN_FILE})")
    output_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(output_dir):
        earlier = read_run(output_dir)  # again, under the lock: another run may have finished
        refuse_foreign(output_dir, earlier)
        if earlier is not None and resume:
            check_same_run(output_dir, earlier, identity)
        elif earlier is not None and not overwrite:
            raise UserValueError(
                f"--output-dir {output_dir}: holds another run's results ({describe(earlier)}); "
                "pass --overwrite to replace them, --resume to continue that same run, or choose "
                "another folder"
            )
        elif earlier is not None:
            for name in contents(output_dir):
                path = output_dir / name
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        write_run(
            output_dir,
            {
                **record,
                "identity": identity,
                "fingerprint": fingerprint(identity),
                "environment": environment(),
                "status": "running",
            },
        )
        yield


def check_same_run(output_dir: Path, earlier: dict[str, Any], identity: dict[str, Any]) -> None:
    stored = earlier.get("identity")
    if stored is None:
        raise UserValueError(
            f"--resume: {output_dir / RUN_FILE} records no run identity (written by an earlier "
            "mmunlearn), so this cannot be checked to be the same run; pass --overwrite to start "
            "afresh"
        )
    differences = identity_differences(stored, identity)
    if differences:
        raise UserValueError(
            f"--resume: {output_dir} holds another run; it differs in "
            + "; ".join(differences)
            + ". Resume with the same model, data and settings, or pass --overwrite to start "
            "afresh"
        )
