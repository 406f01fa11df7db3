"""Regenerate the protobuf code under psp_cdp/snapshot/pb/ from proto/.

    .venv/bin/python tools/genproto.py            # rewrite the committed code
    .venv/bin/python tools/genproto.py --out DIR  # write elsewhere (the freshness test does)

Needs grpcio-tools (`pip install -e '.[dev]'`).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "psp_cdp" / "snapshot" / "pb"


def generate(out: pathlib.Path) -> list[pathlib.Path]:
    from grpc_tools import protoc

    protos = sorted(PROTO_DIR.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--pyi_out={out}"]
    args += [str(p.relative_to(PROTO_DIR)) for p in protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for directory in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        if directory.name != "__pycache__":
            (directory / "__init__.py").touch()
    return sorted(p for p in out.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT_DIR)
    for path in generate(parser.parse_args().out):
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
