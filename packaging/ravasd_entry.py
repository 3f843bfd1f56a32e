"""Entry point of the PyInstaller build: the ``ravasd`` command, frozen.

``freeze_support()`` first: the daemon's stream workers are spawned processes, and in a frozen
build a spawned child re-runs this executable, which must become the worker, not a second CLI.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from ravasd.cli import main

    sys.exit(main())
