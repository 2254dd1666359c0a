"""Which local files a signed trust part becomes, and whether the installed copy is current.

An unchanged part (same target path and SHA-256 as the installed record) is hard-linked
into the new version with its companions instead of being downloaded again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuf.api.metadata import TargetFile

from appliance.trust.signed import Part, inflate_pieces


def companions(part: Part) -> list[str]:
    """The local files a part is kept as (reused together when it is unchanged)."""
    if part.kind == "zlib":
        return [part.local, part.local + ".zz"]
    if part.kind == "base":
        return [part.local, Path(part.local).with_suffix(".idx").as_posix()]
    return [part.local]


def source_record(info: TargetFile) -> dict[str, Any]:
    """What the installed record keeps of a target: enough to recognise it next time."""
    return {"target": info.path, "sha256": info.hashes["sha256"], "length": info.length}


def same_target(installed: dict[str, Any], local: str, info: TargetFile) -> bool:
    """Whether the installed record says ``local`` came from exactly this target."""
    src = installed.get("targets", {}).get(local)
    return (
        isinstance(src, dict)
        and src.get("target") == info.path
        and src.get("sha256") == info.hashes["sha256"]
    )


def inflate_to(src: Path, dest: Path, length: int) -> None:
    """Decompress a verified zlib file in bounded pieces; exactly ``length`` bytes."""
    with src.open("rb") as fin, dest.open("wb") as fout:
        for piece in inflate_pieces(fin, length, dest.name):
            fout.write(piece)
