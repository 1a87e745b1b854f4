"""The rooms of the code and the way their imports point, checked by import-linter with the
contracts in pyproject.toml (docs/architecture.md draws them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the packages under `root`, importing them from there."""
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    """The three packages and the contracts, in a scratch directory."""
    for package in ("bot", "handlers", "storage"):
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_every_import_points_down_the_layers() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    kept = len(contracts["importlinter"]["contracts"])
    assert f"{kept} kept, 0 broken" in result.stdout


def test_every_room_of_bot_is_placed_in_the_layers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    rooms = {
        f"bot.{path.parent.name}"
        for path in (ROOT / "bot").glob("*/__init__.py")
        if path.parent.name != "__pycache__"
    }
    assert rooms, "bot/ has no rooms"
    assert rooms <= placed, f"rooms missing from the layers contract: {sorted(rooms - placed)}"
    # And no module sits loose in bot/ beside the rooms, apart from the package's own files.
    loose = {p.name for p in (ROOT / "bot").glob("*.py")} - {"__init__.py", "__main__.py"}
    assert not loose, f"modules outside any room: {sorted(loose)}"


@pytest.mark.parametrize(
    ("module", "planted", "reported"),
    [
        (
            "bot/delivery/outbox.py",
            "from handlers.tally import tally",
            "bot.delivery.outbox -> handlers.tally",
        ),
        (
            "bot/frontends/console.py",
            "import handlers.pledge",
            "bot.frontends.console -> handlers.pledge",
        ),
        (
            "handlers/tally.py",
            "import bot.delivery.boards",
            "handlers.tally -> bot.delivery.boards",
        ),
    ],
)
def test_an_import_against_the_rules_breaks_the_check(
    tmp_path: Path, module: str, planted: str, reported: str
) -> None:
    copy = copy_of_the_code(tmp_path)
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}  # noqa\n", encoding="utf-8")
    result = lint(copy)
    assert result.returncode != 0
    assert reported in result.stdout
