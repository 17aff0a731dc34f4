"""Shared fixtures: every test medium is generated here by the project's own code."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from f2fcli.io.testclip import make_clip


@pytest.fixture(scope="session")
def ntsc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames, 64x48, 30000/1001 fps, AAC tone."""
    path = tmp_path_factory.mktemp("media") / "ntsc.mp4"
    return make_clip(path, 60, 64, 48, Fraction(30000, 1001))


def leftover_temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if ".part" in p.name]
