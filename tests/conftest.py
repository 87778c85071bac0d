"""Tests run offline: the hub is off and any non-local network connection fails."""

import gc
import os
import socket

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)

_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if (
        isinstance(host, str)
        and host not in ("127.0.0.1", "localhost", "::1")
        and not host.startswith("/")
    ):
        raise RuntimeError(f"tests must not use the network (tried {address})")
    return _connect(self, address)


socket.socket.connect = _guarded_connect


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    from mmunlearn.testing import tiny_world

    path = tmp_path_factory.mktemp("world")
    tiny_world(path)
    return path


@pytest.fixture(scope="session")
def examples(world_dir):
    from mmunlearn.data.jsonl import load_examples

    return load_examples(world_dir)


@pytest.fixture()
def loaded(examples):
    from mmunlearn.testing import tiny_llava

    return tiny_llava(examples)


@pytest.fixture(scope="session", autouse=True)
def _freeze_imported_objects():
    """Move everything imported at collection to gc's permanent generation: the Trainer runs a
    full gc.collect() after every train() call, which otherwise re-scans all of transformers."""
    gc.freeze()
    yield
    gc.unfreeze()
