"""Firestore access: the only package that knows collection names (store/collections.py)."""
