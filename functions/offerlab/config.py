"""Deployment settings, read from the environment once. Nothing here imports Firebase."""
from __future__ import annotations

import os

PROJECT_ID = os.environ.get("GCLOUD_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT") or "demo-offerlab"
REGION = os.environ.get("OFFERLAB_REGION", "us-central1")

# Largest callable request body we accept. Firestore documents are capped at 1 MiB; every request model
# also bounds its strings and lists, so no stored document can approach that cap.
MAX_REQUEST_BYTES = int(os.environ.get("OFFERLAB_MAX_REQUEST_BYTES", str(256 * 1024)))


def in_emulator() -> bool:
    """True under the Firebase Emulator Suite (functions emulator or a test talking to the emulators)."""
    return os.environ.get("FUNCTIONS_EMULATOR") == "true" or "FIRESTORE_EMULATOR_HOST" in os.environ
