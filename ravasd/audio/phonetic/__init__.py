"""Phonetic content: per-10 ms phone posteriors of speech, from a small streaming model this project
trains (``python -m ravasd.evaluation.phonetic.train``) and ships (``phones.npz``)."""
