"""The SQLite unit-of-work engine: one connection, group commit, a worker thread, checkpoints.

It knows no table. A unit of work is one plain function of a `sqlite3.Connection`;
units never interleave, so each is atomic without an asyncio lock. Units submitted within
two event-loop iterations, or while a batch runs, go together (group commit): one
``BEGIN IMMEDIATE ... COMMIT`` for the batch, a savepoint per writing unit, and results
handed out only after the COMMIT.

Where a batch runs:

- **On the event loop**, the hot path (ingest, turns, outbox). These units are
  indexed look-ups and small writes; in WAL mode with ``synchronous=NORMAL`` a COMMIT
  does not wait for the disk, so a batch takes tens of microseconds, less than
  handing it to a thread and back. Running them inline also spares the GIL
  hand-offs between the loop and a worker thread that stretched every store call
  under load (``bench/``: p50 at half of peak 9.5 ms -> 1.7 ms).
- **On the worker thread**: bulk units (export, forget, purge, merges,
  counts over whole tables), set-up, and any batch that finds the write lock taken
  by another process (``switchboard forget`` from a shell): there it waits up to
  ``busy_timeout`` while the loop keeps serving. Inline batches never wait for a lock.
- **Checkpoints** (the only ``fsync`` in WAL mode) run on a second connection in a
  background thread every ``checkpoint_interval`` seconds, never inside a commit.
  SQLite starts the WAL over only when a write begins after a complete copy, and
  under steady writes no checkpoint ends complete (commits go on while it runs): the
  WAL grew for as long as the load lasted (bench: 1.5 GB in 22 s, after which p50 at
  half of peak tripled). So once the WAL holds ``rewind_frames`` pages, the engine
  holds new batches while a second checkpoint copies what came in during the first
  (`_rewind`), and the next batch starts the WAL over.

The engine also holds the file's OS lock (`owns_file`): the process that holds it is
the file's only farm (see `core.store.sqlite`).
"""

from __future__ import annotations

import asyncio
import enum
import fcntl
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import structlog

from core.clock import SYSTEM_CLOCK, Clock
from core.errors import StoreUnavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

Migrations = Sequence[tuple[int, Sequence[str]]]


# WAL pages after which a checkpoint is followed by a rewind (`SQLiteEngine._rewind`): a WAL of
# 256 MB. Bench, full phases, 3 rounds against 16,384 and 32,768: p99 at half of peak of the
# demo bot 4.4 -> 10-13 ms with those (held batches once or twice a second), 4.4 -> 6.2 with this;
# the echo bot's p99 16.8 -> 9.5 ms with this, its p50 no longer tripling.
REWIND_FRAMES = 65536


class SQLiteEngine:
    """Units of work on one SQLite file (``path``; ``:memory:`` works for throwaway use)."""

    def __init__(
        self, path: str, *, busy_timeout: float = 5.0, checkpoint_interval: float = 0.1,
        rewind_frames: int = REWIND_FRAMES, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = path
        self.clock = clock  # the store's time: every concern store reads expiry and timestamps from it
        self.busy_timeout = busy_timeout  # seconds to wait for another process's write lock
        # Seconds between WAL checkpoints (skipped when nothing was written). Short, so each
        # one is small: a checkpoint of a second's writes under load stalled commits for
        # ~25 ms (its fsync), one of 0.1 s's is unnoticeable (bench: p99 27 ms -> 5 ms).
        self.checkpoint_interval = checkpoint_interval
        self.rewind_frames = rewind_frames  # WAL pages after which a checkpoint starts the WAL over
        self.db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None  # one thread: bulk units and lock waits
        # Group commit: units submitted while a batch is being run wait here and then
        # run together in one transaction (see `_submit`).
        self._queue: list[_Unit] = []
        self._busy = False
        self._in_thread: asyncio.Future[Any] | None = None  # the batch on the worker thread
        self._commits = 0  # write batches since the last checkpoint
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_db: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future[int] | None = None
        self._checkpoint_lock = asyncio.Lock()
        self._held = False  # batches wait while the WAL is brought to a full copy (`_rewind`)
        self._deferred = False  # a `_dispatch` came while held
        self.rewinds = 0  # checkpoints run with batches held (one a reader kept from completing counts too)
        self._lock_file: IO[bytes] | None = None

    @property
    def is_open(self) -> bool:
        return self.db is not None

    @property
    def owns_file(self) -> bool:
        """True while this engine holds the file's OS lock (no other process has it open as a store)."""
        return self._lock_file is not None

    # -- lifecycle -----------------------------------------------------------------
    async def open(self, migrations: Migrations) -> int:
        """Connect, configure, apply ``migrations``, take the file's OS lock if free, start
        checkpoints; the schema version. Call only when not open."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        loop = asyncio.get_running_loop()
        try:
            # Used from the loop and from the worker thread, never from both at once
            # (`_busy`), hence check_same_thread=False.
            db = await loop.run_in_executor(thread, functools.partial(
                sqlite3.connect, self.path, isolation_level=None, check_same_thread=False))
            db.row_factory = sqlite3.Row
            await loop.run_in_executor(thread, _configure, db)
            version = await loop.run_in_executor(thread, _migrate, db, migrations)
        except sqlite3.Error as exc:
            thread.shutdown(wait=False)
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self.db, self._thread = db, thread
        self._take_process_lock()
        if self.path != ":memory:" and self.checkpoint_interval > 0:
            self._checkpoint_db = await loop.run_in_executor(thread, functools.partial(
                sqlite3.connect, self.path, isolation_level=None, check_same_thread=False))
            self._checkpointer = loop.create_task(self._checkpoints(self._checkpoint_db))
        return version

    def _take_process_lock(self) -> bool:
        """True if no other process has this file open as a store (an OS lock; freed when a process dies).

        A farm on SQLite is one process. The process that holds the lock knows that every
        lease in the file (turns, outbox, pollers) belongs to a process that is gone, e.g.
        one killed with SIGKILL, so it can take the work over at once instead of waiting
        for the leases to expire. A second opener (``switchboard export``) does not clear.
        """
        if self.path == ":memory:" or self.path.startswith("file:"):
            return False
        try:
            handle = open(f"{self.path}.lock", "wb")  # noqa: SIM115 - held until close()
        except OSError:
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        if self._checkpointing is not None:  # the thread may still be using the connection
            await asyncio.gather(self._checkpointing, return_exceptions=True)
            self._checkpointing = None
        if self.db is not None:
            db, self.db = self.db, None
            queued, self._queue = self._queue, []
            for unit in queued:
                if not unit.future.done():
                    unit.future.set_exception(StoreUnavailable("store closed"))
            if self._in_thread is not None:  # let the batch on the worker thread finish
                await asyncio.gather(self._in_thread, return_exceptions=True)
            thread, self._thread = self._thread, None
            assert thread is not None
            loop = asyncio.get_running_loop()
            if self._checkpoint_db is not None:
                await loop.run_in_executor(thread, self._checkpoint_db.close)
                self._checkpoint_db = None
            await loop.run_in_executor(thread, db.close)
            thread.shutdown(wait=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- checkpoints ---------------------------------------------------------------
    async def _checkpoints(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL into the database file now and then, on a second connection.

        ``PASSIVE`` never blocks the writer; it is the only step that waits for the disk
        (fsync), so it runs on the worker thread, off the event loop and out of every
        commit. ``conn`` is the engine's; `close` closes it once no checkpoint runs.
        """
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            if not self._commits or self._thread is None:
                continue
            self._commits = 0
            async with self._checkpoint_lock:
                try:
                    frames = await self._checkpoint_on_thread(conn)
                    if frames >= self.rewind_frames:
                        await self._rewind(conn)
                except sqlite3.Error as exc:
                    log.warning("store.checkpoint_failed", error=str(exc))

    async def _checkpoint_on_thread(self, conn: sqlite3.Connection) -> int:
        """One ``PASSIVE`` checkpoint on the worker thread; the frames the WAL holds."""
        assert self._thread is not None
        self._checkpointing = asyncio.get_running_loop().run_in_executor(self._thread, _checkpoint, conn)
        return await asyncio.shield(self._checkpointing)  # a cancelled task leaves it to close()

    async def _rewind(self, conn: sqlite3.Connection) -> None:
        """Copy the rest of the WAL with new batches held, so the next batch starts the WAL over.

        No batch runs meanwhile: inline batches run between awaits, and the one thread
        runs a thread batch that was under way before this checkpoint. Units queue while
        held (10-25 ms under the benchmark's load, against a few thousand pages copied;
        at the default ``rewind_frames``, once every 4-8 s under the benchmark's load).
        A reader of another process may keep the copy from completing: then the WAL
        goes on and the next rewind tries again.
        """
        self._held = True
        try:
            await self._checkpoint_on_thread(conn)
            self.rewinds += 1
        finally:
            self._held = False
            if self._deferred:
                self._deferred = False
                asyncio.get_running_loop().call_soon(self._dispatch)

    async def truncate_wal(self) -> None:
        """Checkpoint everything and truncate the WAL file (old frames would survive a mere reset)."""
        async with self._checkpoint_lock:  # one checkpoint at a time, or this one fails at once
            for _ in range(50):
                busy = await self.direct(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
                if not busy:
                    return
                await asyncio.sleep(0.02)  # a reader of another process still needs the old frames
        raise StoreUnavailable("could not truncate the write-ahead log: it is still in use")

    # -- units of work -------------------------------------------------------------
    async def direct(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` alone on the worker thread, outside any batch transaction (it manages its own)."""
        result: T = await self._submit(fn, write=False, where=_Where.DIRECT)
        return result

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run read-only ``fn`` (batched with whatever else is queued); ``bulk``: on the worker thread."""
        result: T = await self._submit(fn, write=False, where=_Where.THREAD if bulk else _Where.LOOP)
        return result

    async def tx(self, fn: Callable[[sqlite3.Connection], T], *, bulk: bool = False) -> T:
        """Run ``fn`` atomically: all of it is committed before this returns, or none of it."""
        result: T = await self._submit(fn, write=True, where=_Where.THREAD if bulk else _Where.LOOP)
        return result

    def _submit(self, fn: Callable[[sqlite3.Connection], Any], *, write: bool, where: _Where) -> asyncio.Future[Any]:
        """Queue a unit; units queued together run as one batch, in submission order.

        A batch is, if any unit writes, one ``BEGIN IMMEDIATE ... COMMIT`` with a savepoint
        per writing unit: a unit that raises is rolled back alone, and every unit's result
        is handed out only after the COMMIT, so an acknowledged write is durable.
        """
        if self.db is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Unit(fn, write, future, where))
        if not self._busy:
            self._busy = True
            # Run the batch in the loop iteration after next: units submitted by this
            # iteration's callbacks and by the next one's join it, so under load more
            # units share a COMMIT (bench: about 3% more messages/s, p99 unchanged).
            loop.call_soon(loop.call_soon, self._dispatch)
        return future

    def _dispatch(self) -> None:
        if self._held:
            self._deferred = True  # `_rewind` runs it when done (`_busy` stays set meanwhile)
            return
        db = self.db
        if not self._queue or db is None:
            self._busy = False
            queued, self._queue = self._queue, []
            for unit in queued:
                if not unit.future.done():
                    unit.future.set_exception(StoreUnavailable("store is not open"))
            return
        head = self._queue[0]
        if head.where is _Where.LOOP:
            # The leading run of hot units, at most MAX_INLINE_BATCH: the loop is not held longer.
            count = 1
            while count < min(len(self._queue), MAX_INLINE_BATCH) and self._queue[count].where is _Where.LOOP:
                count += 1
            batch, self._queue = self._queue[:count], self._queue[count:]
            try:
                outcomes = _run_batch(db, batch, inline=True)
            except _LockTaken:
                self._on_thread(db, batch)  # wait for the other process's lock off the loop
                return
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                self._complete(batch, exc)
                return
            if len(outcomes) < len(batch):  # the time budget ran out: the rest lead the next batch
                self._queue[:0] = batch[len(outcomes):]
                batch = batch[:len(outcomes)]
            self._complete(batch, outcomes)
            return
        self._queue.pop(0)
        self._on_thread(db, [head])

    def _on_thread(self, db: sqlite3.Connection, batch: list[_Unit]) -> None:
        busy_ms = int(self.busy_timeout * 1000)
        direct = batch[0].where is _Where.DIRECT

        def work() -> list[tuple[bool, Any]] | BaseException:
            try:
                db.execute(f"PRAGMA busy_timeout={busy_ms}")
                try:
                    if direct:
                        try:
                            return [(True, batch[0].fn(db))]
                        except Exception as exc:  # noqa: BLE001 - handed to the caller
                            return [(False, _error(exc))]
                    return _run_batch(db, batch, inline=False)
                finally:
                    db.execute("PRAGMA busy_timeout=0")
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                return exc

        assert self._thread is not None
        self._in_thread = asyncio.get_running_loop().run_in_executor(self._thread, work)

        def done(future: asyncio.Future[list[tuple[bool, Any]] | BaseException]) -> None:
            self._in_thread = None
            self._complete(batch, future.exception() or future.result())

        self._in_thread.add_done_callback(done)

    def _complete(self, batch: list[_Unit], outcomes: list[tuple[bool, Any]] | BaseException) -> None:
        if isinstance(outcomes, BaseException):
            error = outcomes if isinstance(outcomes, StoreUnavailable) else StoreUnavailable(
                f"{type(outcomes).__name__}: {outcomes}")
            outcomes = [(False, error)] * len(batch)
        if any(unit.write for unit in batch):
            self._commits += 1
        for unit, (ok, value) in zip(batch, outcomes, strict=True):
            if unit.future.done():  # the caller was cancelled; the unit ran anyway
                continue
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)
        # The next batch: what queued meanwhile, after the callbacks just scheduled have run
        # (they often submit the next unit, which then joins it), or idle.
        if self._queue:
            asyncio.get_running_loop().call_soon(self._dispatch)
        else:
            self._busy = False


def _configure(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    # Inline batches never wait for a lock (a batch that finds it taken moves to the
    # worker thread, which waits busy_timeout); checkpoints are the checkpointer's job.
    db.execute("PRAGMA busy_timeout=0")
    db.execute("PRAGMA wal_autocheckpoint=0")
    # Erased personal data is overwritten on disk, not just unlinked (GDPR forget).
    db.execute("PRAGMA secure_delete=ON")
    # Statement journals and sorts in memory: as files, SQLite created and unlinked one in
    # /var/tmp about every fourth message under load (bench: 30 -> 14 pwrite calls a message,
    # about 5% more messages a second).
    db.execute("PRAGMA temp_store=MEMORY")


def _migrate(db: sqlite3.Connection, migrations: Migrations) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, script in migrations:
        if version <= current:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in script:
                db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        current = version
    return int(current)


MAX_INLINE_BATCH = 64  # units per batch run on the event loop
# A batch on the event loop stops taking units once it has run this long and commits what it
# ran: the loop is held about this long at most, not 64 slow units long. Under a burst such
# batches were what the slowest replies waited for (bench: 5-7 ms loop stalls set p99 at half
# of peak); a COMMIT costs ~10 us, so the budget costs throughput nothing measurable.
INLINE_BUDGET_SECONDS = 0.002


class _Where(enum.Enum):
    LOOP = "loop"  # in a batch on the event loop (the hot path)
    THREAD = "thread"  # in a batch of its own on the worker thread (bulk work)
    DIRECT = "direct"  # alone on the worker thread, outside any batch transaction (set-up, checkpoints)


@dataclass(slots=True)
class _Unit:
    fn: Callable[[sqlite3.Connection], Any]
    write: bool
    future: asyncio.Future[Any]
    where: _Where


class _LockTaken(Exception):
    """An inline batch found the write lock held by another connection; nothing was written."""


def _lock_taken(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode in (
        sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(db: sqlite3.Connection) -> int:
    """A ``PASSIVE`` checkpoint (never waits for a lock); the frames in the WAL."""
    _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)


def _error(exc: BaseException) -> BaseException:
    return StoreUnavailable(str(exc)) if isinstance(exc, sqlite3.OperationalError) else exc


def _run_batch(db: sqlite3.Connection, batch: Sequence[_Unit], *, inline: bool) -> list[tuple[bool, Any]]:
    """Run ``batch`` in order; one transaction if any unit writes.

    ``inline``: the connection does not wait for locks; if one is taken, everything is
    rolled back and `_LockTaken` raised, so the caller can run the batch again elsewhere.
    An inline batch also ends once it has run ``INLINE_BUDGET_SECONDS``: the outcomes are
    then those of the units it ran (at least one), committed; the caller queues the rest.
    """
    try:
        return _run_units(db, batch, inline)
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _run_units(db: sqlite3.Connection, batch: Sequence[_Unit], inline: bool) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    writes = any(unit.write for unit in batch)
    savepoints = len(batch) > 1
    if writes:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if inline and _lock_taken(exc):
                raise _LockTaken from exc
            return [(False, _error(exc))] * len(batch)
    started = time.perf_counter()
    for index, unit in enumerate(batch):
        if inline and index and time.perf_counter() - started > INLINE_BUDGET_SECONDS:
            break  # `SQLiteEngine._dispatch` queues the rest again, first
        if unit.write and savepoints:
            db.execute("SAVEPOINT unit")
        try:
            value = unit.fn(db)
        except Exception as exc:
            if inline and isinstance(exc, sqlite3.Error) and _lock_taken(exc):
                raise _LockTaken from exc  # _run_batch rolls back
            if writes and not db.in_transaction:
                # SQLite rolled the whole transaction back itself (disk full, I/O error):
                # nothing of this batch is durable and reads may have seen its writes.
                return [(False, StoreUnavailable(f"transaction rolled back: {exc}"))] * len(batch)
            if unit.write and savepoints:
                db.execute("ROLLBACK TO unit")
                db.execute("RELEASE unit")
            elif unit.write:
                db.execute("ROLLBACK")
                return [(False, _error(exc))]
            outcomes.append((False, _error(exc)))
            continue
        if unit.write and savepoints:
            db.execute("RELEASE unit")
        outcomes.append((True, value))
    if writes:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if inline and _lock_taken(exc):
                raise _LockTaken from exc
            # Nothing of this batch is durable, and reads may have seen its writes: all fail.
            if db.in_transaction:
                db.execute("ROLLBACK")
            return [(False, _error(exc))] * len(batch)
    return outcomes
