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
