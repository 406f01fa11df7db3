"""Generated code is current, and the public surface is what it claims."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATED = ROOT / "psp_cdp" / "snapshot" / "pb"


def test_protobuf_code_matches_proto(tmp_path: pathlib.Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "tools" / "genproto.py"), "--out", str(tmp_path)], check=True)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {
        p.relative_to(GENERATED): p.read_bytes()
        for p in GENERATED.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert fresh.keys() == committed.keys()
    stale = [str(name) for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"regenerate with `python tools/genproto.py`: {stale}"


@pytest.mark.parametrize(
    "module",
    ["psp_cdp", "psp_cdp.errors", "psp_cdp.cdp", "psp_cdp.snapshot", "psp_cdp.snapshot.model", "psp_cdp.state", "psp_cdp.store"],
)
def test_all_names_exist(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__all__, module
    missing = [name for name in imported.__all__ if not hasattr(imported, name)]
    assert not missing


def test_errors_form_one_tree() -> None:
    from psp_cdp import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.PspError)
        assert name in errors.__doc__


LAYERS = ["cdp", "snapshot", "state", "store", "record", "daemon", "client"]


def test_layers_import_only_earlier_layers() -> None:
    offences = []
    for index, layer in enumerate(LAYERS):
        later = LAYERS[index + 1 :]
        for path in (ROOT / "psp_cdp" / layer).rglob("*.py"):
            text = path.read_text()
            for other in later:
                if f"from ..{other}" in text or f"psp_cdp.{other}" in text or f"from ...{other}" in text:
                    offences.append(f"{path.relative_to(ROOT)} imports {other}")
        if layer == "snapshot":
            for path in (ROOT / "psp_cdp" / layer).rglob("*.py"):
                if "from ..cdp" in path.read_text():
                    offences.append(f"{path.relative_to(ROOT)} imports cdp")
    assert not offences
