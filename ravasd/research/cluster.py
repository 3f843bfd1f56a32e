"""The Ray engine of ``ravasd anonymize --engine ray``: each file one Ray task.

A task runs :func:`~ravasd.research.jobs.run_job` (the same code as a local job, single-threaded)
with ``num_cpus=1``; Ray re-runs a task whose worker process or node was lost (``max_retries``),
and the coordinator writes every result into the same manifest as a local batch. Inputs and the
output folder must be on storage every node sees under the same path (NFS, a cluster file system,
or one machine); tasks read and write files there directly, only records travel back.

Without ``address`` a local Ray instance is started on this machine (``--jobs`` CPUs, loopback
only, no dashboard); with ``address`` (or ``RAY_ADDRESS``) the batch joins that cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import RavasError
from .jobs import Job, lost_record, run_job, single_threaded


def _task(job: Job, cfg: Config, outdir: str) -> dict[str, Any]:
    single_threaded()
    return run_job(job, cfg, outdir)


def run_ray(
    jobs: list[Job],
    cfg: Config,
    outdir: Path,
    cpus: int | None,
    on_result: Callable[[dict[str, Any]], None],
    address: str | None = None,
    max_retries: int = 3,
) -> None:
    try:
        import ray  # the cluster extra
    except ImportError:
        raise RavasError(
            "--engine ray needs Ray.", "install the cluster extra: pip install 'ravasd[cluster]'."
        ) from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # local only: no usage report leaves the machine
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
    try:
        task = ray.remote(num_cpus=1, max_retries=max_retries)(_task)
        refs = {task.remote(job, cfg, str(outdir)): job for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    rec = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker/node was lost more often than retried
                    rec = lost_record(
                        job, cfg, f"lost on the cluster after {max_retries} retries ({type(err).__name__})"
                    )
                rec["engine"] = "ray"
                on_result(rec)
    finally:
        if started:
            ray.shutdown()
