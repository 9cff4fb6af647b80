"""Cloud Functions entry point: the runtime imports this module and deploys what it finds here.

Only wiring. Each area declares its functions in ``offerlab/entrypoints/<area>.py``. An instance
serving one function (``FUNCTION_TARGET``) imports only that function's module; discovery and
deployment import them all (offerlab/entrypoints/catalog.py says why). Nothing heavy (numpy, scipy,
the Firestore client) is imported at module level, so every instance, above all ``get_offer``'s,
starts as fast as the Firebase SDK allows (benchmarks/bench_coldstart.py).
"""
import importlib as _importlib
import os as _os

import firebase_admin as _firebase_admin

from offerlab.entrypoints.catalog import modules_to_load as _modules_to_load

for _name in _modules_to_load(_os.environ.get("FUNCTION_TARGET")):
    _module = _importlib.import_module(_name)
    globals().update({_fn: getattr(_module, _fn) for _fn in _module.__all__})

# The emulator re-imports main.py in the same process when files change: initialise once.
if not _firebase_admin._apps:
    _firebase_admin.initialize_app()
