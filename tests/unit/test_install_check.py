"""scripts/install_check.py: an install is current by content (a fresh clone's new file dates do not count)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from install_check import node_current  # noqa: E402

LOCK = {"packages": {"": {"name": "offerlab"},
                     "node_modules/a": {"version": "1.0.0", "integrity": "sha512-a"},
                     "node_modules/b": {"version": "2.0.0", "integrity": "sha512-b", "optional": True},
                     "node_modules/c": {"version": "3.0.0", "integrity": "sha512-c", "extraneous": True}}}


def write(root: Path, lock: dict, installed: dict | None) -> Path:
    (root / "package-lock.json").write_text(json.dumps(lock))
    if installed is not None:
        (root / "node_modules").mkdir()
        (root / "node_modules/.package-lock.json").write_text(json.dumps(installed))
    return root


def test_the_installed_tree_matching_the_lock_is_current(tmp_path):
    installed = {"packages": {"node_modules/a": {"version": "1.0.0", "integrity": "sha512-a"}}}
    assert node_current(write(tmp_path, LOCK, installed))       # b optional (absent), c extraneous


def test_a_different_version_or_integrity_or_a_missing_package_is_not(tmp_path):
    for packages in ({"node_modules/a": {"version": "1.0.1", "integrity": "sha512-a"}},
                     {"node_modules/a": {"version": "1.0.0", "integrity": "sha512-x"}},
                     {}):
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        root.mkdir()
        assert not node_current(write(root, LOCK, {"packages": packages}))


def test_no_install_at_all_is_not_current(tmp_path):
    assert not node_current(write(tmp_path, LOCK, None))


def test_this_checkout_is_current():
    assert node_current()  # make install ran (node_modules matches package-lock.json)
