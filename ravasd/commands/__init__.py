"""Commands at the edge: the CLI and what only it calls (anonymize, render, bench, doctor)."""
