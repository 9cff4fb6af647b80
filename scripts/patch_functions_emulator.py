"""Patch two races in firebase-tools' Functions emulator that lose requests to Python workers.

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

Applied by scripts/emulators.py before the suite starts; idempotent; it fails loudly when the code it
patches is not found (another firebase-tools version: re-check both bugs).
"""
from __future__ import annotations

import sys
from pathlib import Path

TARGET = Path("node_modules/firebase-tools/lib/emulator/functionsEmulator.js")
MARKER = "offerlab patch: reserved python worker ports"
KEEPALIVE_MARKER = "offerlab patch: no keep-alive to workers"

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

PATCHES = ((MARKER, ORIGINAL, PATCHED), (KEEPALIVE_MARKER, KEEPALIVE_ORIGINAL, KEEPALIVE_PATCHED))


def patch(root: Path) -> str:
    """Apply the patches under ``root``; returns "patched" or "already patched"; raises when it cannot."""
    path = root / TARGET
    source = original = path.read_text()
    for marker, before, after in PATCHES:
        if marker in source:
            continue
        if source.count(before) != 1:
            raise RuntimeError(f"{path}: the code to patch was not found (firebase-tools upgraded?); "
                               "see scripts/patch_functions_emulator.py")
        source = source.replace(before, after)
    if source == original:
        return "already patched"
    path.write_text(source)
    return "patched"


if __name__ == "__main__":
    print(patch(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
