"""Atomic writes and weights-only checkpoint loading."""

from __future__ import annotations

import os

import pytest
import torch

from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, safe_torch_load, write_json


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_atomic_save_roundtrips_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ckpt" / "last.ckpt"
    atomic_torch_save({"state_dict": {"w": torch.arange(3.0)}}, path)
    assert torch.equal(safe_torch_load(path)["state_dict"]["w"], torch.arange(3.0))
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["last.ckpt", "metrics.json"]


def test_a_checkpoint_carrying_a_pickled_callable_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hook": _Payload()}, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenlabError, match="refused to load"):
        safe_torch_load(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"", b"not a zip file at all"])
def test_corrupt_or_missing_checkpoints_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(GenlabError, match="corrupt"):
        safe_torch_load(path)
    with pytest.raises(GenlabError, match="does not exist"):
        safe_torch_load(tmp_path / "missing.ckpt")
