"""Patch four races in firebase-tools' emulators that lose requests to Python workers or Pub/Sub deliveries,
and bound the Python workers each function may start (5).

1. Shared ports (firebase-tools 15.34.2, lib/emulator/functionsEmulator.js, ``startPython``): each new worker
gets ``portfinder.getPortPromise({port: 8081 + randomInt(0, 1000)})``, the first port that is free *now*;
the worker binds it about a second later, when its Python process has started. Two workers started in
that second can be handed the same port: one binds it, the other logs "Connection in use" and dies,
and the emulator — whose readiness probe connects to the port and finds the first worker listening —
sends the second worker's requests to the first one, a worker that may serve a *different* function.
We saw both outcomes: Pub/Sub deliveries lost ("Failed to handle request", the message acknowledged
anyway) and a callable answered with another function's response (our client: "response without a
result"). It happens under bursts of concurrent deliveries, i.e. exactly in the reliability suite.

The patch keeps the emulator's choice but remembers the ports it handed out in the last two minutes
and skips them (JavaScript runs the check and the reservation without an ``await`` in between, so two
starts cannot interleave there).

2. Keep-alive (``TCPConn.httpReqOpts``): since Node 19 the global HTTP agent keeps idle sockets for 5 s,
while the workers' gunicorn closes an idle keep-alive connection after 2 s (its default ``keepalive``).
A request sent on a socket the worker is closing fails with "socket hang up": the emulator answers a
callable with HTTP 500 ``{"code": "ECONNRESET"}`` and loses a Pub/Sub delivery. We saw both, on warm
workers, a few seconds after their previous request. The patch opens a fresh connection per request
(``agent: false``), which costs nothing measurable on localhost. (The same race as nodejs/node#47130.)

3. Pub/Sub deliveries acknowledged after a failure (lib/emulator/pubsubEmulator.js, ``onMessage``): the
bridge that pulls each message from the Pub/Sub emulator and POSTs it to the Functions emulator catches
a failed POST, logs it at DEBUG and acknowledges the message anyway, so the delivery is lost, where
production Pub/Sub redelivers a message that was not acknowledged (every offerlab Pub/Sub function is
declared ``retry=True``: tests/unit/test_delivery_policy.py). Worse, it asks for a JSON answer, and a
function answers "OK": every *successful* POST also ended in "Unable to parse JSON" (harmless only because
everything was acknowledged anyway). Measured on 2 cores with a burst of 1,500 unique metric events (+50 duplicates) published at 100 a second: 1,316 and 1,082 of the 1,500 reached
the function; the `--debug` log showed 2,615 POSTs failing with undici's "Connect Timeout Error" (10 s:
the Functions emulator's hub, in the same saturated Node process as the bridge, did not accept in time)
and 453 with "read ECONNRESET", each acknowledged. The Cloud SDK Pub/Sub emulator's gRPC
``NoSuchMethodError`` stream errors appear only at shutdown (``onRstStreamRead``, when the subscriber
closes its streams): they lose nothing. The patch acknowledges a message only once every trigger of the
topic has taken it; after a transport failure, HTTP 429 or an HTTP 5xx (the function raised: redelivery
asked for) it *nacks* the message after a full-jitter backoff (up to 10 s) so the emulator redelivers it,
and triggers that already took the message are not called again. A 4xx (a request the function can
never accept: production never sends one) is given up on with a warning. And it bounds the bridge's
deliveries in flight per topic (``$OFFERLAB_PUBSUB_MAX_IN_FLIGHT``, 16 from scripts/emulators.py, where the
measurements are): with the Node client's default of 1,000 a burst opens ~1,000 connections at once.

4. Worker ports shared between suites (``startPython`` again): every suite on the machine draws its workers'
ports from the same 8081–9080, and the reservation of (1) is per process. Two suites (several developers'
``make test`` at different port offsets, or a demo beside a test run) can pick the same port: ours dies
with "Connection in use" and our emulator sends its requests to the *other suite's* worker, which serves
another function against another database. Seen in a demo run beside two other suites: 25 of 122 metric
events lost, four of them answered by a callable worker (HTTP 400 ``INVALID_ARGUMENT "Bad Request"`` to a
Pub/Sub delivery), the gunicorn log saying "Connection in use: ('127.0.0.1', 8882)". The patch moves the
range of worker ports (8081–9080, and the discovery server's 8081) to ``$OFFERLAB_WORKER_PORT_BASE`` +
0–999, which scripts/emulators.py derives from the suite's port offset.

5. Unbounded workers (``sendRequest`` and the HTTP handler): a request that finds no idle worker of its
function starts a new Python process, and idle ones are never reaped, so every burst leaves its high-water
mark of workers behind. Measured in one ``make test`` on 2 cores: 148 workers (444 processes) alive at once,
14–18 GB of 24 GB, e.g. 16 each for get_offer and ingest_offer_metric_event; beside another suite the kernel's
OOM killer took the Firestore emulator (the run failed with "connection refused"). Two cores cannot run
more than two requests at a time anyway, so the patch makes a request wait (polling every 25 ms, at most
2 minutes, then it starts one anyway) for an idle worker once its function has
``$OFFERLAB_MAX_WORKERS_PER_FUNCTION`` workers (4 from scripts/emulators.py; unset: unbounded, as shipped).

Applied by scripts/emulators.py before the suite starts; idempotent; it fails loudly when the code it
patches is not found (another firebase-tools version: re-check all five).
"""
from __future__ import annotations

import sys
from pathlib import Path

FUNCTIONS_JS = Path("node_modules/firebase-tools/lib/emulator/functionsEmulator.js")
PUBSUB_JS = Path("node_modules/firebase-tools/lib/emulator/pubsubEmulator.js")
TARGETS = (FUNCTIONS_JS, PUBSUB_JS)
MARKER = "offerlab patch: reserved python worker ports"
KEEPALIVE_MARKER = "offerlab patch: no keep-alive to workers"
REDELIVERY_MARKER = "offerlab patch: redeliver failed Pub/Sub deliveries"
IN_FLIGHT_MARKER = "offerlab patch: bounded Pub/Sub deliveries in flight"
IN_FLIGHT_ENV = "OFFERLAB_PUBSUB_MAX_IN_FLIGHT"
PORT_RANGE_MARKER = "offerlab patch: worker ports of this suite only"
PORT_BASE_ENV = "OFFERLAB_WORKER_PORT_BASE"
WORKERS_MARKER = "offerlab patch: bounded workers per function"
HTTP_WORKERS_MARKER = "offerlab patch: bounded HTTP workers per function"
WORKERS_ENV = "OFFERLAB_MAX_WORKERS_PER_FUNCTION"

# Waits until the function has an idle worker or room for one more (JavaScript runs the check and the
# caller's use of the idle worker without an ``await`` in between: no other request can take it).
_ROOM = f"""await (globalThis.__offerlabRoom ??= async (pool, id, runtime) => {{
            const max = Number(process.env.{WORKERS_ENV} || 0);
            const deadline = Date.now() + 120000;
            while (max > 0 && !pool.readyForWork(id, runtime) && pool.getTriggerWorkers(id, runtime).length >= max
                   && Date.now() < deadline) {{
                await new Promise((resolve) => setTimeout(resolve, 25));
            }}
        }})(pool, trigger.id, record.backend.runtime);"""

SEND_WORKERS_ORIGINAL = """        const pool = this.workerPools[record.backend.codebase];
        if (!pool.readyForWork(trigger.id, record.backend.runtime)) {
            try {
                await this.startRuntime(record.backend, trigger);
            }
            catch (e) {
                this.logger.logLabeled("ERROR", `Failed to start runtime for ${trigger.id}: ${e}`);"""

SEND_WORKERS_PATCHED = SEND_WORKERS_ORIGINAL.replace(
    "        const pool = this.workerPools[record.backend.codebase];\n",
    f"        const pool = this.workerPools[record.backend.codebase];\n"
    f"        // {WORKERS_MARKER} (scripts/patch_functions_emulator.py)\n        {_ROOM}\n", 1)

HTTP_WORKERS_ORIGINAL = """        const pool = this.workerPools[record.backend.codebase];
        if (!pool.readyForWork(trigger.id, record.backend.runtime)) {
            try {
                await this.startRuntime(record.backend, trigger);
            }
            catch (e) {
                const message = e instanceof Error ? e.message : String(e);"""

HTTP_WORKERS_PATCHED = HTTP_WORKERS_ORIGINAL.replace(
    "        const pool = this.workerPools[record.backend.codebase];\n",
    f"        const pool = this.workerPools[record.backend.codebase];\n"
    f"        // {HTTP_WORKERS_MARKER} (scripts/patch_functions_emulator.py)\n        {_ROOM}\n", 1)

ORIGINAL = """        const port = await portfinder.getPortPromise({
            port: 8081 + (0, utils_1.randomInt)(0, 1000),
        });
        const childProcess = (0, python_1.runWithVirtualEnv)(args, backend.functionsDir, {"""

PATCHED = f"""        // {MARKER} (scripts/patch_functions_emulator.py)
        const reserved = (globalThis.__offerlabReservedPorts ??= new Set());
        let start = 8081 + (0, utils_1.randomInt)(0, 1000);
        let port;
        for (;;) {{
            port = await portfinder.getPortPromise({{ port: start }});
            if (!reserved.has(port)) break;
            start = port + 1;
        }}
        reserved.add(port);
        setTimeout(() => reserved.delete(port), 120000).unref();
        const childProcess = (0, python_1.runWithVirtualEnv)(args, backend.functionsDir, {{"""


KEEPALIVE_ORIGINAL = """    httpReqOpts() {
        return {
            host: this.host,
            port: this.port,
        };
    }"""

KEEPALIVE_PATCHED = f"""    httpReqOpts() {{
        return {{
            host: this.host,
            port: this.port,
            agent: false, // {KEEPALIVE_MARKER} (scripts/patch_functions_emulator.py)
        }};
    }}"""

REDELIVERY_ORIGINAL = """        for (const { triggerKey, signatureType } of triggers) {
            try {
                const path = `/functions/projects/${this.args.projectId}/triggers/${triggerKey}`;
                if (signatureType === "event") {
                    await this.client.post(path, this.createLegacyEventRequestBody(topicName, message));
                }
                else if (signatureType === "cloudevent") {
                    await this.client.post(path, this.createCloudEventRequestBody(topicName, message), { headers: { "Content-Type": "application/cloudevents+json; charset=UTF-8" } });
                }
                else {
                    throw new error_1.FirebaseError(`Unsupported trigger signature: ${signatureType}`);
                }
            }
            catch (e) {
                this.logger.logLabeled("DEBUG", "pubsub", e);
            }
        }
        this.logger.logLabeled("DEBUG", "pubsub", `Acking message ${message.id}`);
        message.ack();"""

REDELIVERY_PATCHED = f"""        // {REDELIVERY_MARKER} (scripts/patch_functions_emulator.py)
        const pending = (this.__offerlabPending ??= new Map());
        const key = `${{topicName}}/${{message.id}}`;
        const state = pending.get(key) ?? {{ taken: new Set(), attempts: 0 }};
        pending.set(key, state);
        let failure;
        for (const {{ triggerKey, signatureType }} of triggers) {{
            if (state.taken.has(triggerKey)) {{
                continue;
            }}
            try {{
                const path = `/functions/projects/${{this.args.projectId}}/triggers/${{triggerKey}}`;
                // The body is read as text (apiv2's "xml" type): a function answers "OK", which as JSON
                // would fail to parse *after* a successful delivery and look like a failure.
                if (signatureType === "event") {{
                    await this.client.post(path, this.createLegacyEventRequestBody(topicName, message), {{ responseType: "xml" }});
                }}
                else if (signatureType === "cloudevent") {{
                    await this.client.post(path, this.createCloudEventRequestBody(topicName, message), {{ headers: {{ "Content-Type": "application/cloudevents+json; charset=UTF-8" }}, responseType: "xml" }});
                }}
                else {{
                    throw new error_1.FirebaseError(`Unsupported trigger signature: ${{signatureType}}`);
                }}
                state.taken.add(triggerKey);
            }}
            catch (e) {{
                this.logger.logLabeled("DEBUG", "pubsub", e);
                const status = e?.status;
                const transient = status === undefined ? e?.original !== undefined : status === 429 || status >= 500;
                if (transient) {{
                    failure = failure ?? e;
                }}
                else {{
                    state.taken.add(triggerKey);
                    this.logger.logLabeled("WARN", "pubsub", `Message ${{message.id}} refused by ${{triggerKey}} (not redelivered): ${{e?.message ?? e}}`);
                }}
            }}
        }}
        if (failure) {{
            state.attempts += 1;
            const delay = Math.floor(Math.random() * Math.min(10000, 250 * 2 ** Math.min(state.attempts, 10)));
            this.logger.logLabeled("WARN", "pubsub", `Delivery ${{state.attempts}} of message ${{message.id}} on ${{topicName}} failed (${{failure?.original?.message ?? failure?.message ?? failure}}); redelivering in ${{delay}} ms`);
            setTimeout(() => message.nack(), delay).unref?.();
            return;
        }}
        pending.delete(key);
        this.logger.logLabeled("DEBUG", "pubsub", `Acking message ${{message.id}}`);
        message.ack();"""

IN_FLIGHT_ORIGINAL = """        sub.on("message", (message) => {
            this.onMessage(topicName, message);
        });"""

IN_FLIGHT_PATCHED = f"""        // {IN_FLIGHT_MARKER} (scripts/patch_functions_emulator.py)
        const inFlight = Number.parseInt(process.env.{IN_FLIGHT_ENV} ?? "", 10);
        if (inFlight > 0) {{
            sub.setOptions({{ flowControl: {{ maxMessages: inFlight, allowExcessMessages: false }} }});
        }}
        sub.on("message", (message) => {{
            this.onMessage(topicName, message);
        }});"""

PORT_RANGE_ORIGINAL = """const portfinder = require("portfinder");
"""

PORT_RANGE_PATCHED = f"""const portfinder = require("portfinder");
// {PORT_RANGE_MARKER} (scripts/patch_functions_emulator.py)
{{
    const base = Number.parseInt(process.env.{PORT_BASE_ENV} ?? "", 10);
    if (base > 0 && !portfinder.__offerlabWorkerPortBase) {{
        const find = portfinder.getPortPromise;
        portfinder.__offerlabWorkerPortBase = base;
        portfinder.getPortPromise = (options, ...rest) => {{
            const port = options?.port;
            const inRange = typeof port === "number" && port >= 8081 && port < 9081;
            return find.call(portfinder, inRange ? {{ ...options, port: base + (port - 8081) }} : options, ...rest);
        }};
    }}
}}
"""

# (file, marker, the code as npm ships it, the patched code)
PATCHES = (
    (FUNCTIONS_JS, MARKER, ORIGINAL, PATCHED),
    (FUNCTIONS_JS, KEEPALIVE_MARKER, KEEPALIVE_ORIGINAL, KEEPALIVE_PATCHED),
    (FUNCTIONS_JS, PORT_RANGE_MARKER, PORT_RANGE_ORIGINAL, PORT_RANGE_PATCHED),
    (FUNCTIONS_JS, WORKERS_MARKER, SEND_WORKERS_ORIGINAL, SEND_WORKERS_PATCHED),
    (FUNCTIONS_JS, HTTP_WORKERS_MARKER, HTTP_WORKERS_ORIGINAL, HTTP_WORKERS_PATCHED),
    (PUBSUB_JS, REDELIVERY_MARKER, REDELIVERY_ORIGINAL, REDELIVERY_PATCHED),
    (PUBSUB_JS, IN_FLIGHT_MARKER, IN_FLIGHT_ORIGINAL, IN_FLIGHT_PATCHED),
)


def patch(root: Path) -> str:
    """Apply the patches under ``root``; returns "patched" or "already patched"; raises when it cannot.

    Every file is checked before any is written, so an unknown version is refused without a half-patched
    install. A file carrying a marker but not the current patched text (an older version of this patch)
    is refused too: reinstall firebase-tools (``rm node_modules/.installed; make install``)."""
    sources = {target: (root / target).read_text() for target in TARGETS}
    patched = dict(sources)
    for target, marker, before, after in PATCHES:
        source = patched[target]
        if marker in source:
            if after not in source:
                raise RuntimeError(f"{root / target}: an older offerlab patch is applied; reinstall "
                                   "firebase-tools; see scripts/patch_functions_emulator.py")
            continue
        if source.count(before) != 1:
            raise RuntimeError(f"{root / target}: the code to patch was not found (firebase-tools upgraded?); "
                               "see scripts/patch_functions_emulator.py")
        patched[target] = source.replace(before, after)
    changed = [target for target in TARGETS if patched[target] != sources[target]]
    for target in changed:
        (root / target).write_text(patched[target])
    return "patched" if changed else "already patched"


if __name__ == "__main__":
    print(patch(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
