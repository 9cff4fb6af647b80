"""scripts/patch_functions_emulator.py: applies once to the pinned firebase-tools, is idempotent, and
refuses (loudly) a file it does not recognise."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from patch_functions_emulator import PATCHES, TARGET, patch  # noqa: E402


@pytest.fixture
def pristine(tmp_path):
    """A copy of the installed emulator file as npm ships it (un-patched if the suite already ran)."""
    source = (ROOT / TARGET).read_text()
    for _, original, patched in PATCHES:
        source = source.replace(patched, original)
    (tmp_path / TARGET).parent.mkdir(parents=True)
    (tmp_path / TARGET).write_text(source)
    return tmp_path


def test_the_patch_applies_once_and_is_idempotent(pristine):
    assert not any(marker in (pristine / TARGET).read_text() for marker, _, _ in PATCHES)
    assert patch(pristine) == "patched"
    text = (pristine / TARGET).read_text()
    for marker, original, patched in PATCHES:
        assert text.count(marker) == 1 and original not in text and patched in text
    assert patch(pristine) == "already patched" and (pristine / TARGET).read_text() == text


def test_the_patched_file_still_loads_in_node(pristine):
    patch(pristine)
    # The module's requires resolve relative to its real location: check syntax only.
    node = shutil.which("node")
    assert node, "node is required (make installs firebase-tools with npm)"
    subprocess.run([node, "--check", str(pristine / TARGET)], check=True)


def test_an_unknown_version_is_refused(tmp_path):
    (tmp_path / TARGET).parent.mkdir(parents=True)
    (tmp_path / TARGET).write_text("// some other firebase-tools\n")
    with pytest.raises(RuntimeError, match="not found"):
        patch(tmp_path)
