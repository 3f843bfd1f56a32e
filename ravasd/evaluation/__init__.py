"""Measurements of privacy and intelligibility (``ravasd eval``) and the speech corpora they use."""
