"""``ravasd anonymize IN... -o OUTDIR``: whole corpora, on every core or a Ray cluster, resumable.

Each file is one job, run by :func:`~ravasd.research.jobs.run_job` — the same :func:`~ravasd.research.anonymize.anonymize`
as a one-file run, single-threaded (one x264 thread, one BLAS thread, one llvmpipe thread), so a
file's output is byte for byte what ``ravasd anonymize FILE -o OUT`` writes. Jobs run in a pool of
``--jobs`` worker processes (``engine="local"``) or as Ray tasks (:mod:`.cluster`); either way the
coordinator (this process) is the only writer of ``OUTDIR/manifest.jsonl``: one JSON line per
finished job, flushed and fsync'ed, so a batch killed at any point resumes where it stopped —
done files are skipped (same input size and mtime, same config digest, output present), failed
ones are retried, changed inputs redone. Outputs are written atomically (``MediaWriter``); partial
files a killed run left are removed at the next start. One bad file never stops the batch.
"""

from __future__ import annotations

import dataclasses
import glob
import multiprocessing as mp
import multiprocessing.connection
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..config import Config
from ..errors import MediaError, RavasError
from ..media.formats import AUDIO_IN, VIDEO_IN
from ..media.manifest import Manifest, read_manifest
from ..media.reader import probe
from .jobs import Job, config_digest, is_done, lost_record, run_job, single_threaded

LOCK = ".ravasd-batch.lock"


def _media(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_IN | AUDIO_IN and not path.name.startswith(".")


def expand(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Files, folders (recursive) and globs → (file, output path below OUTDIR without extension).

    A folder's files keep their path below the folder's own name; a glob's files their path below
    the glob's first wildcard-free folder; a file its name. Raises :class:`RavasError` for an input
    that matches nothing and for two inputs that would write the same output."""
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        text = str(raw)
        if glob.has_magic(text):
            parts = Path(text).parts
            base = Path(*parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))] or ["."])
            hits = sorted(Path(p) for p in glob.glob(text, recursive=True))
            files = [(p, p.relative_to(base)) for p in hits if p.is_file() and _media(p)]
        elif Path(text).is_dir():
            base = Path(text)
            files = [
                (p, Path(base.resolve().name) / p.relative_to(base))
                for p in sorted(base.rglob("*"))
                if p.is_file() and _media(p) and not any(q.startswith(".") for q in p.relative_to(base).parts)
            ]
        elif Path(text).is_file():
            files = [(Path(text), Path(Path(text).name))]
        else:
            raise RavasError(f"Input {text} does not exist.", "check the path; folders and globs ('*.mp4') work too.")
        if not files:
            raise RavasError(f"Input {text} holds no video or audio files ({', '.join(sorted(VIDEO_IN | AUDIO_IN))}).")
        found += [(p, str(rel.with_suffix(""))) for p, rel in files]
    seen: dict[str, Path] = {}
    out = []
    for path, rel in found:
        if rel in seen:
            if seen[rel].resolve() == path.resolve():
                continue  # the same file named twice
            raise RavasError(
                f"{seen[rel]} and {path} would both be written to {rel}.*",
                "rename one of them, or anonymize them into different output folders.",
            )
        seen[rel] = path
        out.append((path, rel))
    return out


def plan(inputs: Iterable[str | Path], allow_truncated: bool = False) -> list[Job]:
    jobs = []
    for path, rel in expand(inputs):
        st = path.stat()
        try:
            duration = probe(path).duration
        except MediaError:
            duration = 0.0  # the job itself reports what is wrong with it
        jobs.append(Job(str(path.resolve()), rel, st.st_size, st.st_mtime_ns, duration, allow_truncated))
    return jobs


# ------------------------------------------------------------------------------ resuming
def _lock(outdir: Path) -> Any:
    import fcntl  # POSIX; the batch runs on Linux/macOS machines and clusters

    fh = open(outdir / LOCK, "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise RavasError(
            f"Another ravasd batch is writing into {outdir}.", "wait for it to finish, or choose another output folder."
        ) from None
    return fh


def _clean_partials(outdir: Path) -> int:
    """Remove the temporary files of outputs a killed run was writing (``.NAME.partial-PID.EXT``)."""
    n = 0
    for p in outdir.rglob(".*.partial-*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


# ------------------------------------------------------------------------------ the batch
@dataclass
class BatchResult:
    done: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0
    media_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        total = self.done + self.skipped + len(self.failed)
        text = (
            f"{total} files: {self.done + self.skipped} done ({self.skipped} already done before), "
            f"{len(self.failed)} failed; {self.media_s / 3600:.3f} h of media in {self.wall_s:.1f} s"
        )
        for rec in self.failed:
            text += f"\n  FAILED {rec['input']}: {rec['error']}"
        return text


def _worker(conn: Any, cfg: Config, outdir: str) -> None:
    """A local worker process: one job at a time from the coordinator, its record back."""
    single_threaded()
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the coordinator is gone
            return
        if job is None:
            return
        conn.send(run_job(job, cfg, outdir))


def run_local(
    jobs: list[Job],
    cfg: Config,
    outdir: Path,
    workers: int,
    on_result: Callable[[dict[str, Any]], None],
    retries: int = 1,
) -> None:
    """Run ``jobs`` on ``workers`` spawned processes, one job each at a time. A worker that dies
    (a crash in a native library, the OOM killer) loses only its own job, which is retried
    ``retries`` times on a fresh worker and then recorded as failed."""
    ctx = mp.get_context("spawn")
    queue = list(reversed(jobs))
    lost: dict[str, int] = {}
    busy: dict[Any, tuple[Any, Job]] = {}  # connection → (process, job)

    def start(job: Job) -> None:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(theirs, cfg, str(outdir)), name="ravasd-batch", daemon=True)
        proc.start()
        theirs.close()
        ours.send(job)
        busy[ours] = (proc, job)

    try:
        for _ in range(min(workers, len(queue))):
            start(queue.pop())
        while busy:
            for conn in mp.connection.wait(list(busy)):
                proc, job = busy.pop(conn)
                try:
                    rec = conn.recv()
                except (EOFError, OSError):  # the worker died on this job
                    proc.join(5)
                    lost[job.rel] = lost.get(job.rel, 0) + 1
                    conn.close()
                    if lost[job.rel] <= retries:
                        start(job)
                    else:
                        on_result(
                            lost_record(
                                job,
                                cfg,
                                f"the worker process died on this file "
                                f"{lost[job.rel]} times (exit code {proc.exitcode})",
                            )
                        )
                        if queue:
                            start(queue.pop())
                    continue
                on_result(rec)
                if queue:  # the same worker takes the next file
                    job = queue.pop()
                    conn.send(job)
                    busy[conn] = (proc, job)
                else:
                    conn.send(None)
                    proc.join(5)
                    conn.close()
    finally:
        for proc, _ in busy.values():  # interrupted: no worker outlives the coordinator
            proc.terminate()
            proc.join(2)


def _still_to_do(planned: list[Job], prev: dict, digest: str, outdir: Path, res: BatchResult) -> list[Job]:
    """The planned jobs a previous run has not done with this config; the done ones are counted
    as skipped in ``res`` (their records kept)."""
    todo = []
    for job in planned:
        if is_done(job, prev.get(job.rel), digest, outdir):
            res.skipped += 1
            res.records.append(prev[job.rel])
            res.media_s += float(prev[job.rel].get("duration_s") or 0.0)
        else:
            todo.append(job)
    return todo


def run_batch(
    inputs: Iterable[str | Path],
    outdir: str | Path,
    cfg: Config,
    jobs: int | None = None,
    engine: str = "local",
    address: str | None = None,
    progress: bool = True,
    allow_truncated: bool = False,
    log: Callable[[str], None] = print,
) -> BatchResult:
    """Anonymize every input into ``outdir`` (see the module docstring); returns what happened."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise RavasError(f"Output {outdir} is a file.", "name a folder for a batch (it is created).")
    outdir.mkdir(parents=True, exist_ok=True)
    planned = plan(inputs, allow_truncated)
    lock = _lock(outdir)
    t0 = time.monotonic()
    res = BatchResult()
    manifest = Manifest(outdir)
    try:
        if n := _clean_partials(outdir):
            log(f"removed {n} partial file(s) left by an interrupted run")
        digest, prev = config_digest(cfg), read_manifest(outdir)
        todo = _still_to_do(planned, prev, digest, outdir, res)
        workers = jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        log(
            f"{len(planned)} files ({sum(j.duration for j in planned) / 3600:.3f} h of media): {len(todo)} to do, "
            f"{res.skipped} already done; {engine} engine, {workers if engine == 'local' else 'cluster'} "
            f"{'jobs' if engine == 'local' else 'CPUs'}"
        )
        bar = tqdm(
            total=round(sum(j.duration for j in todo), 1),
            unit="s",
            disable=not progress,
            leave=False,
            desc="anonymize",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of media "
            "[{elapsed}<{remaining}]{postfix}",
        )
        durations = {j.rel: j.duration for j in todo}

        def on_result(rec: dict[str, Any]) -> None:
            manifest.append(rec)
            res.records.append(rec)
            if rec["status"] == "done":
                res.done += 1
                res.media_s += float(rec.get("duration_s") or 0.0)
                line = (
                    f"done    {rec['input']} → {outdir / rec['output']} "
                    f"({rec.get('duration_s', 0):.1f} s of media in {rec.get('wall_s', 0):.1f} s)"
                    + (f"; truncated input ({rec['truncated']}), allowed" if rec.get("truncated") else "")
                )
            else:
                res.failed.append(rec)
                line = f"FAILED  {rec['input']}: {rec['error']}"
            bar.update(round(durations.get(rec["rel"], 0.0), 1))
            bar.set_postfix_str(f"{res.done + len(res.failed)}/{len(todo)} files, {len(res.failed)} failed")
            (bar.write if progress else log)(line)

        if todo:
            if engine == "ray":
                from .cluster import run_ray  # the cluster extra: only a Ray batch imports Ray

                run_ray(todo, cfg, outdir, jobs, on_result, address=address)
            else:
                run_local(todo, cfg, outdir, workers, on_result)
        bar.close()
    finally:
        manifest.close()
        lock.close()
    res.wall_s = time.monotonic() - t0
    return res
