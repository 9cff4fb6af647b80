"""Pure domain: no Firebase or Google imports here (tests/unit/test_layering.py checks it)."""
