"""The ledger wired as the functions wire it (Firestore, the Storage emulator, the key file the suite
generated), for tests that drive the use cases directly on the real emulators."""
from __future__ import annotations

from offerlab.service.ledger import Ledger
from offerlab.store.checkpoints import GcsCheckpointPublisher, previous_verifiers_from_environment, signer_from_environment
from offerlab.store.ledger import FirestoreLedgerRepository


def emulator_ledger() -> Ledger:
    signer = signer_from_environment()
    assert signer is not None, "the suite generates a signing key (scripts/emulators.py)"
    return Ledger(FirestoreLedgerRepository(), GcsCheckpointPublisher(), signer, previous_verifiers_from_environment())


def clear_published_checkpoints() -> int:
    """Delete every object of the Storage emulator's checkpoint bucket (only the emulator allows it):
    to be called with the per-module Firestore reset, so a chain id reused after a reset (e.g.
    ``unattributed``) does not meet the checkpoints of the chain that had it before."""
    import os

    assert os.environ.get("STORAGE_EMULATOR_HOST"), "only ever against the Storage emulator"
    publisher = GcsCheckpointPublisher()
    bucket = publisher._bucket()
    names = [blob.name for blob in bucket.client.list_blobs(publisher.bucket_name)]
    for name in names:
        bucket.blob(name).delete()
    return len(names)
