"""scripts/patch_functions_emulator.py: applies once to the pinned firebase-tools, is idempotent, refuses
(loudly) a file it does not recognise, and the patched Pub/Sub bridge redelivers what it failed to deliver
(run in Node against a fake Functions client and a fake message)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from patch_functions_emulator import PATCHES, PUBSUB_JS, TARGETS, patch  # noqa: E402


@pytest.fixture
def pristine(tmp_path):
    """Copies of the installed emulator files as npm ships them (un-patched if the suite already ran)."""
    for target in TARGETS:
        source = (ROOT / target).read_text()
        for file, _, original, patched in PATCHES:
            if file == target:
                source = source.replace(patched, original)
        (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / target).write_text(source)
    return tmp_path


def test_the_patch_applies_once_and_is_idempotent(pristine):
    shipped = {target: (pristine / target).read_text() for target in TARGETS}
    assert not any(marker in shipped[file] for file, marker, _, _ in PATCHES)
    assert patch(pristine) == "patched"
    texts = {target: (pristine / target).read_text() for target in TARGETS}
    undone = dict(texts)
    for file, marker, original, patched in PATCHES:
        assert texts[file].count(marker) == 1 and texts[file].count(patched) == 1
        undone[file] = undone[file].replace(patched, original)
    assert undone == shipped  # the patches change nothing else
    assert patch(pristine) == "already patched"
    assert {target: (pristine / target).read_text() for target in TARGETS} == texts


def test_the_patched_files_still_load_in_node(pristine):
    patch(pristine)
    # The modules' requires resolve relative to their real location: check syntax only.
    for target in TARGETS:
        subprocess.run([_node(), "--check", str(pristine / target)], check=True)


def test_an_unknown_version_is_refused_and_nothing_is_written(pristine):
    (pristine / PUBSUB_JS).write_text("// some other firebase-tools\n")
    functions_before = (pristine / TARGETS[0]).read_text()
    with pytest.raises(RuntimeError, match="not found"):
        patch(pristine)
    assert (pristine / TARGETS[0]).read_text() == functions_before  # no half-patched install


def test_an_outdated_patch_of_ours_is_refused(pristine):
    patch(pristine)
    text = (pristine / PUBSUB_JS).read_text()
    (pristine / PUBSUB_JS).write_text(text.replace("redelivering in", "retrying in"))
    with pytest.raises(RuntimeError, match="older offerlab patch"):
        patch(pristine)


# The patched onMessage, driven in Node: the emulator's module is loaded with its requires stubbed, its
# Functions client replaced by a script of outcomes, and Math.random pinned so the backoff is the maximum.
DRIVER = r"""
const Module = require("module");
const realLoad = Module._load;
class FirebaseError extends Error { constructor(m, o = {}) { super(m); Object.assign(this, o); } }
Module._load = function (request, parent, isMain) {
    if (request === "../error") return { FirebaseError };
    if (request.startsWith(".") || request.startsWith("@google-cloud")) return {};
    return realLoad(request, parent, isMain);
};
const { PubsubEmulator } = require(process.argv[2]);
const scenario = JSON.parse(process.argv[3]);
Math.random = () => 0.999999;
const realSetTimeout = setTimeout;
const delays = [];
global.setTimeout = (fn, ms) => { delays.push(ms); return realSetTimeout(fn, 0); };
const emulator = Object.create(PubsubEmulator.prototype);
emulator.args = { projectId: "p" };
const warnings = [];
emulator.logger = { logLabeled: (level, _, msg) => { if (level === "WARN") warnings.push(String(msg)); } };
emulator.triggersForTopic = new Map([["t", scenario.triggers.map((k) => ({ triggerKey: k, signatureType: "cloudevent" }))]]);
emulator.subscriptionForTopic = new Map([["t", { name: "projects/p/subscriptions/s" }]]);
emulator.ensureFunctionsClient = () => {};
const posts = [];
const outcomes = scenario.outcomes.slice();
emulator.client = { post: async (path, body, options) => {
    const trigger = path.split("/").pop();
    posts.push(trigger);
    // A function answers "OK" (not JSON): the bridge must not ask apiv2 to parse the answer.
    if (options?.responseType !== "xml") throw new FirebaseError("Unable to parse JSON: OK");
    const outcome = outcomes.shift() ?? "ok";
    if (outcome === "connect") throw new FirebaseError("Failed to make request", { original: new Error("Connect Timeout Error") });
    if (outcome !== "ok") throw new FirebaseError(`HTTP Error: ${outcome}`, { status: Number(outcome) });
} };
const acks = [];
let deliveries = 0;
const message = { id: "42", data: Buffer.from("{}"), attributes: {}, publishTime: new Date(),
    ack: () => acks.push("ack"), nack: () => { acks.push("nack"); deliver(); } };
function deliver() { deliveries += 1; emulator.onMessage("t", message); }
deliver();
// Report once the message is acknowledged (every scenario ends so), plus a moment for the bookkeeping; a
// deadline, not a fixed delay, so a loaded machine cannot cut a scenario short.
const started = Date.now();
(function report() {
    if (acks.includes("ack") || Date.now() - started > 20000) {
        realSetTimeout(() => console.log(JSON.stringify({ posts, acks, delays, warnings, deliveries,
            pending: emulator.__offerlabPending.size })), 50);
    } else {
        realSetTimeout(report, 5);
    }
})();
"""


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is required (make installs firebase-tools with npm)"
    return node


def _drive(pristine, triggers, outcomes):
    patch(pristine)
    driver = pristine / "driver.js"
    driver.write_text(DRIVER)
    out = subprocess.run([_node(), str(driver), str(pristine / PUBSUB_JS),
                          json.dumps({"triggers": triggers, "outcomes": outcomes})],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return json.loads(out)


def test_a_failed_delivery_is_nacked_after_a_growing_jittered_backoff_until_it_succeeds(pristine):
    run = _drive(pristine, ["fn"], ["connect", "503", "500", "ok"])
    assert run["posts"] == ["fn"] * 4
    assert run["acks"] == ["nack", "nack", "nack", "ack"]          # acknowledged only once delivered
    assert run["delays"] == [499, 999, 1999]                       # full jitter: random() · min(10 s, 250 ms · 2^n)
    assert len(run["warnings"]) == 3 and "redelivering" in run["warnings"][0]
    assert run["pending"] == 0                                     # nothing is remembered after the ack


def test_the_backoff_is_capped_at_ten_seconds(pristine):
    run = _drive(pristine, ["fn"], ["500"] * 8)
    assert run["delays"][-3:] == [9999, 9999, 9999] and run["acks"][-1] == "ack"


def test_a_trigger_that_took_the_message_is_not_called_again_on_redelivery(pristine):
    run = _drive(pristine, ["a", "b"], ["ok", "connect", "ok"])
    assert run["posts"] == ["a", "b", "b"]
    assert run["acks"] == ["nack", "ack"]


def test_a_request_the_function_refuses_is_not_redelivered(pristine):
    run = _drive(pristine, ["fn"], ["400"])
    assert run["posts"] == ["fn"] and run["acks"] == ["ack"] and run["deliveries"] == 1
    assert "not redelivered" in run["warnings"][0]


def test_too_many_requests_is_redelivered(pristine):
    run = _drive(pristine, ["fn"], ["429", "ok"])
    assert run["acks"] == ["nack", "ack"]


FLOW_DRIVER = r"""
const Module = require("module");
const realLoad = Module._load;
Module._load = function (request, parent, isMain) {
    if (request.startsWith(".") || request.startsWith("@google-cloud")) return { FirebaseError: Error };
    return realLoad(request, parent, isMain);
};
const { PubsubEmulator } = require(process.argv[2]);
const emulator = Object.create(PubsubEmulator.prototype);
emulator.logger = { logLabeled: () => {} };
const calls = [];
const sub = { setOptions: (o) => calls.push(["setOptions", o]), on: (event) => calls.push(["on", event]) };
const topic = { create: async () => {}, createSubscription: async () => [sub] };
Object.defineProperty(emulator, "pubsub", { value: { topic: () => topic } });
emulator.maybeCreateTopicAndSub("t").then(() => console.log(JSON.stringify(calls)));
"""


@pytest.mark.parametrize("env, expected", [
    ({"OFFERLAB_PUBSUB_MAX_IN_FLIGHT": "16"},
     [["setOptions", {"flowControl": {"maxMessages": 16, "allowExcessMessages": False}}], ["on", "message"]]),
    ({}, [["on", "message"]]),                      # unset: firebase-tools' own flow control (1,000)
])
def test_the_bridge_bounds_its_deliveries_in_flight_before_it_subscribes(pristine, env, expected):
    patch(pristine)
    driver = pristine / "flow.js"
    driver.write_text(FLOW_DRIVER)
    out = subprocess.run([_node(), str(driver), str(pristine / PUBSUB_JS)], check=True, capture_output=True,
                         text=True, timeout=30, env={"PATH": os.environ["PATH"], **env}).stdout
    assert json.loads(out) == expected


PORTS_DRIVER = r"""
const Module = require("module");
const realLoad = Module._load;
const asked = [];
const portfinder = { getPortPromise: async (options) => { asked.push(options?.port ?? null); return options?.port; } };
const stub = new Proxy({}, { get: (target, name) => (name in target ? target[name] : function () {}) });
Module._load = function (request, parent, isMain) {
    if (request === "portfinder") return portfinder;
    if (request === process.argv[2] || ["fs", "path", "http", "os", "url", "events", "util", "crypto", "stream",
                                        "child_process"].includes(request))
        return realLoad(request, parent, isMain);
    return stub;
};
require(process.argv[2]);
(async () => {
    await portfinder.getPortPromise({ port: 8081 });     // the discovery server
    await portfinder.getPortPromise({ port: 8500 });     // a worker
    await portfinder.getPortPromise({ port: 9080 });
    await portfinder.getPortPromise({ port: 9229 });     // the inspector: not a worker port
    await portfinder.getPortPromise();
    console.log(JSON.stringify(asked));
})();
"""


@pytest.mark.parametrize("env, expected", [
    ({"OFFERLAB_WORKER_PORT_BASE": "12000"}, [12000, 12419, 12999, 9229, None]),
    ({}, [8081, 8500, 9080, 9229, None]),             # unset: firebase-tools' own range
])
def test_worker_ports_move_to_the_suites_own_range(pristine, env, expected):
    patch(pristine)
    driver = pristine / "ports.js"
    driver.write_text(PORTS_DRIVER)
    out = subprocess.run([_node(), str(driver), str(pristine / TARGETS[0])], check=True, capture_output=True,
                         text=True, timeout=30, env={"PATH": os.environ["PATH"], **env}).stdout
    assert json.loads(out) == expected


def test_suites_at_different_port_offsets_get_disjoint_worker_port_ranges():
    from emulators import worker_port_base

    bases = [worker_port_base(offset) for offset in range(0, 2200, 100)]
    assert bases[0] == 10000 and bases[2] == 12000
    assert all(b - a >= 1000 for a, b in zip(bases, bases[1:]))
    assert max(bases) + 999 < 32768                    # below Linux's ephemeral ports
