"""Parsing in a process of its own, so a sync uses a second core.

In one process the fetch threads and the writer share one GIL: decoding and
checking ten thousand rows a page is Python work that the writer's SQLite
statements (which run without the GIL) could overlap but cannot, as parsing
waits for the writer's transactions (``store.sync.writer.Turns``). So once a
sync meets a large page, the engine starts :class:`ParseWorker`: a child
process (``python -m store.sync.parse_worker``) that runs
:func:`store.sync.packed.parse_body` with the run's adapter and window, the
same function a fetch thread runs otherwise. It gets each body and sends back
the parsed page (its figures already packed as JSON text) or the rejection
(reason and JSON path). Until it is ready, and for small pages, the fetch
threads parse as before.

The child is a plain interpreter reading its standard input: it ends when
that closes (the sync is done, or its process died).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from store.errors import PageRejected
from store.sync.adapter import Adapter, ParsedPage, Request, Window
from store.sync.packed import parse_body

# Bodies at least this large are parsed by the worker (and the first one starts it).
WORKER_BODY_BYTES = 64 * 1024

_LENGTH = struct.Struct("!Q")


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the parse worker closed its pipe")
    (length,) = _LENGTH.unpack(head)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError("the parse worker closed its pipe")
    return pickle.loads(data)


class ParseWorker:
    """The child process and its pipes; one page at a time (a lock), as the
    child parses one at a time anyway. Started in the background: ``ready``
    says whether it can take pages yet."""

    def __init__(self, adapter: Adapter, window: Window) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._failed = False
        # The child imports this package from where this process found it.
        root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
        self._process = subprocess.Popen([sys.executable, "-m", "store.sync.parse_worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env)   # never on a TUI's screen
        self._setup = threading.Thread(target=self._start, args=(adapter, window), daemon=True,
                                       name="sync-parse-worker")
        self._setup.start()

    def _start(self, adapter: Adapter, window: Window) -> None:
        try:
            with self._lock:
                assert self._process.stdin is not None and self._process.stdout is not None
                _send(self._process.stdin, (adapter, window))
                if _receive(self._process.stdout) != "ready":
                    raise EOFError("the parse worker did not start")
            self._ready.set()
        except Exception:   # no worker: the fetch threads go on parsing themselves
            self._failed = True

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._failed

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the child can take pages (or failed to start); whether it can."""
        self._setup.join(timeout)
        return self.ready

    def parse(self, chain: str, request: Request, body: bytes, headers: dict[str, str]) -> ParsedPage:
        """What :func:`store.sync.packed.parse_body` returns or raises, from the child."""
        with self._lock:
            assert self._process.stdin is not None and self._process.stdout is not None
            try:
                _send(self._process.stdin, (chain, request, body, headers))
                kind, answer = _receive(self._process.stdout)
            except (OSError, EOFError):
                self._failed = True
                raise
        if kind == "page":
            return answer  # type: ignore[no-any-return]
        if kind == "rejected":
            why, path = answer
            raise PageRejected(why, path=path)
        raise RuntimeError(answer)   # a bug in the adapter, as the child saw it

    def close(self) -> None:
        """Close the child's input (it ends) and wait for it."""
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: the adapter and window, then pages until the input closes."""
    adapter, window = _receive(requests)
    _send(answers, "ready")
    while True:
        try:
            chain, request, body, headers = _receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("page", parse_body(adapter, chain, request, body, window, headers))
        except PageRejected as rejected:
            answer = ("rejected", (rejected.why, rejected.path))
        except Exception as exc:  # a bug in an adapter: the engine fails the run with it
            answer = ("error", f"{type(exc).__name__}: {exc}")
        try:
            _send(answers, answer)
        except BrokenPipeError:   # the sync ended (or died) without waiting for this answer
            return


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the sync handles it, not its worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Answers go through a copy of the standard output; anything printed goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
