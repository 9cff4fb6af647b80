"""Cloud Functions entry point: the runtime imports this module and deploys what it finds here.

Only wiring. Each area declares its functions in ``offerlab/entrypoints/<area>.py``; nothing heavy
(numpy, scipy, the Firestore client) is imported at module level, so every instance — above all
``get_offer``'s — starts as fast as the Firebase SDK allows (benchmarks/bench_coldstart.py).
"""
from firebase_admin import initialize_app

from offerlab.entrypoints.holdouts import *  # noqa: F401,F403
from offerlab.entrypoints.system import *  # noqa: F401,F403

initialize_app()
