"""Run a real ``marimo edit`` server as a subprocess and talk to it over HTTP.

This is test and tooling infrastructure: it drives marimo exactly the way an
agent does (``POST /api/kernel/execute``, ``marimo pair execute``), with no
browser.  Stdlib only.

Typical use::

    from pairproxy.marimo.server import MarimoServer

    with MarimoServer("notebook.py") as srv:      # starts, opens a session,
        r = srv.execute("print(df.shape)")        # instantiates with autoRun
        assert r.success and r.stdout == "(3, 2)\\n"

What :meth:`MarimoServer.start` does, in order (checked against marimo 0.25.2):

1. picks a free loopback port and launches
   ``python -m marimo edit NOTEBOOK --headless --no-token --no-sandbox
   --skip-update-check --host 127.0.0.1 --port PORT [--no-skew-protection]``
   in its own process group, with ``cwd``, ``HOME`` (optional) and
   ``XDG_CONFIG_HOME`` / ``XDG_STATE_HOME`` / ``XDG_CACHE_HOME`` pointed into
   ``workdir`` so no user config is read and the server registry
   (``$XDG_STATE_HOME/marimo/servers/``) stays private;
2. polls ``GET /health`` (and checks that the process is still alive, so a
   foreign server on the same port is not mistaken for ours);
3. holds ``GET /sse?session_id=NAME`` open in a daemon thread: a headless
   server has no session until a client connects, and this creates one.  The
   first event is ``kernel-ready`` (it carries the *stable* session id that
   ``marimo pair`` uses);
4. ``POST /api/kernel/instantiate {"objectIds":[],"values":[],"autoRun":true}``
   and waits for the ``completed-run`` event, so the notebook's globals exist.
   This must precede the first execute: ``/api/kernel/execute`` instantiates
   with ``autoRun=false`` itself and later instantiates are ignored.

:meth:`MarimoServer.stop` closes the session stream and asks marimo to shut
down (``POST /api/kernel/shutdown``: clean exit in ~0.3 s); if the server is
still alive after ``timeout`` it sends SIGTERM, waits, then SIGKILLs the
server's process group and any process that was a descendant of the server
when ``stop`` began (the kernel runs in its own session/process group because
it calls ``os.setsid()``).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "ExecResult",
    "MarimoServer",
    "MarimoServerError",
    "SSEEvent",
    "find_free_port",
    "iter_sse",
    "write_entry_points",
]

_HOST = "127.0.0.1"

# Servers started by this process; stopped at interpreter exit as a last resort
# so an aborted test run does not leave ``marimo edit`` processes behind.
_LIVE: weakref.WeakSet[MarimoServer] = weakref.WeakSet()


@atexit.register
def _stop_live_servers() -> None:
    for srv in list(_LIVE):
        with contextlib.suppress(Exception):
            srv.stop(timeout=2.0)


class MarimoServerError(RuntimeError):
    """The marimo server could not be started, reached, or used."""


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event.  ``name`` is ``"message"`` when unnamed."""

    name: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one ``POST /api/kernel/execute`` (one scratchpad run).

    ``stdout``/``stderr`` are the concatenated console events, in order
    (tracebacks arrive on ``stderr``).  ``success`` and the output come from
    the terminal ``done`` event.  Like ``marimo pair execute``, an empty output
    (no last expression, a ``None`` value, or a failed run) is reported as
    ``output_mimetype = output_data = None``.  When the rendered output is a
    mimebundle, marimo already reduced it to its ``text/plain`` (else
    ``text/html``) entry.
    """

    stdout: str
    stderr: str
    success: bool
    output_mimetype: str | None
    output_data: str | None
    elapsed: float = 0.0
    events: tuple[SSEEvent, ...] = field(default=(), repr=False)


def iter_sse(lines: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Parse a ``text/event-stream`` body given as an iterable of raw lines."""
    name = "message"
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(name, "\n".join(data))
            name, data = "message", []
            continue
        if line.startswith(":"):  # comment / keep-alive
            continue
        key, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
    if data:
        yield SSEEvent(name, "\n".join(data))


def find_free_port(host: str = _HOST) -> int:
    """Ask the OS for a free TCP port on ``host``.

    There is an unavoidable race between closing the probe socket and the
    server binding the port; :meth:`MarimoServer.start` retries once on a
    bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_entry_points(
    dest: str | os.PathLike[str],
    entry_points: Mapping[str, Mapping[str, str]],
    *,
    dist_name: str = "pairproxy_test_entry_points",
    version: str = "0.0.0",
) -> Path:
    """Make entry points visible to ``importlib.metadata`` without installing.

    Writes ``dest/<dist_name>-<version>.dist-info/{METADATA,entry_points.txt}``
    and returns ``dest``.  Put ``dest`` on ``sys.path`` (e.g. via the
    ``pythonpath=`` argument of :class:`MarimoServer`, which prepends it to
    ``PYTHONPATH``) and ``importlib.metadata.entry_points()`` finds them.
    The marimo kernel is a ``multiprocessing`` *spawn* child of the server and
    inherits both ``PYTHONPATH`` and the parent's ``sys.path``.

    ``entry_points`` maps group -> {name: "module:attr"}, e.g.
    ``{"marimo.cell.executor": {"pairproxy": "pairproxy.marimo.executor:factory"}}``.
    """
    root = Path(dest)
    info = root / f"{dist_name}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n",
        encoding="utf-8",
    )
    lines: list[str] = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in eps.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return root


def _tail(path: Path, max_lines: int = 40) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16_000))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-max_lines:])


def _descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (Linux ``/proc``; psutil as fallback)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command name is parenthesised and may contain spaces
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) >= 2:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    else:  # pragma: no cover - non-Linux
        try:
            import psutil  # type: ignore[import-untyped]
        except ImportError:
            return []
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


class MarimoServer:
    """A ``marimo edit`` subprocess with one headless session.

    Parameters
    ----------
    notebook:
        Path of the notebook file.  With ``copy_notebook=True`` it is copied
        into ``workdir`` first (marimo writes ``__marimo__/`` session caches
        next to the notebook and code mode rewrites the file).
    workdir:
        Directory for the server's cwd, logs, XDG dirs and (optionally) HOME.
        A temporary directory is created, and removed on :meth:`stop`, when
        not given.
    port:
        TCP port on 127.0.0.1; a free one is chosen when ``None``.
    session_id:
        The session (consumer) id used for ``/sse`` and the
        ``Marimo-Session-Id`` header.
    pythonpath:
        Directories prepended to ``PYTHONPATH`` of the server (and so of the
        kernel), e.g. the repository root and a :func:`write_entry_points` dir.
    env:
        Extra environment variables for the server.
    isolate_home:
        Point ``HOME`` at ``workdir/home`` so no ``~/.marimo.toml`` is read.
    user_config:
        TOML text written to ``$XDG_CONFIG_HOME/marimo/marimo.toml``.
    skew_protection:
        Keep marimo's skew protection.  By default it is disabled
        (``--no-skew-protection``).  With it, every POST except
        ``/api/kernel/execute`` (instantiate, interrupt, shutdown, ...) needs
        the ``Marimo-Server-Token`` header; the token is then read from the
        ``"serverToken"`` field of the notebook page (``GET /``) and sent on
        every request.
    auto_run:
        Instantiate with ``autoRun=true`` on start so notebook globals exist.
        With ``False`` nothing is instantiated on start (the first execute
        then instantiates without running cells).
    python:
        Interpreter used for ``-m marimo`` (default: ``sys.executable``).
    launcher:
        Command that starts the server instead of ``python -m marimo edit``, given
        the notebook and marimo's options after it, e.g.
        ``[sys.executable, "-m", "pairproxy.cli", "serve"]`` (it must ``exec`` marimo,
        keeping the process id, as ``pairproxy serve`` does).
    """

    def __init__(
        self,
        notebook: str | os.PathLike[str],
        *,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        session_id: str = "pairproxy",
        pythonpath: Sequence[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        isolate_home: bool = True,
        user_config: str | None = None,
        skew_protection: bool = False,
        auto_run: bool = True,
        copy_notebook: bool = False,
        python: str | None = None,
        startup_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        launcher: Sequence[str] | None = None,
    ) -> None:
        self._notebook_src = Path(notebook).resolve()
        self._own_workdir = workdir is None
        self._workdir_arg = Path(workdir).resolve() if workdir is not None else None
        self._requested_port = port
        self.session_id = session_id
        self._pythonpath = [str(Path(p).resolve()) for p in pythonpath]
        self._extra_env = dict(env or {})
        self._isolate_home = isolate_home
        self._user_config = user_config
        self._skew_protection = skew_protection
        self._auto_run = auto_run
        self._copy_notebook = copy_notebook
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self._extra_args = list(extra_args)
        self._launcher = list(launcher) if launcher is not None else None

        self.workdir: Path | None = None
        self.notebook: Path = self._notebook_src
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.stable_session_id: str | None = None
        #: notebook cell ids, in order, as sent in the session's kernel-ready
        self.cell_ids: list[str] = []
        self.env: dict[str, str] = {}
        self.command: list[str] = []
        self.timings: dict[str, float] = {}
        #: skew-protection token (only fetched when ``skew_protection=True``)
        self.server_token: str | None = None

        self._sse_thread: threading.Thread | None = None
        self._sse_conn: http.client.HTTPConnection | None = None
        self._sse_events: deque[tuple[float, str, Any]] = deque(maxlen=2000)
        self._sse_cond = threading.Condition()
        self._sse_closed = False
        self._sse_error: BaseException | None = None
        self._stopping = False

    # ------------------------------------------------------------------ info

    @property
    def url(self) -> str:
        if self.port is None:
            raise MarimoServerError("server not started")
        return f"http://{_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def stdout_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "server.stdout.log"

    @property
    def stderr_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "server.stderr.log"

    def stderr_tail(self, max_lines: int = 40) -> str:
        return _tail(self.stderr_path, max_lines) if self.workdir else ""

    def stdout_tail(self, max_lines: int = 40) -> str:
        return _tail(self.stdout_path, max_lines) if self.workdir else ""

    def _describe(self) -> str:
        return f"notebook={self.notebook} port={self.port} pid={self.pid} workdir={self.workdir}"

    def _fail(self, message: str) -> MarimoServerError:
        parts = [f"{message} ({self._describe()})"]
        if self.proc is not None and self.proc.poll() is not None:
            parts.append(f"server exit code: {self.proc.returncode}")
        if self.command:
            parts.append("command: " + " ".join(self.command))
        err = self.stderr_tail()
        if err:
            parts.append("--- server stderr (tail) ---\n" + err)
        out = self.stdout_tail(10)
        if out:
            parts.append("--- server stdout (tail) ---\n" + out)
        return MarimoServerError("\n".join(parts))

    # --------------------------------------------------------------- lifecycle

    def __enter__(self) -> MarimoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> MarimoServer:
        """Launch the server, open the session and instantiate the notebook."""
        if self.proc is not None:
            raise MarimoServerError("server already started")
        # allow start() again after stop()
        self._stopping = self._sse_closed = False
        self._sse_error = self.server_token = self.stable_session_id = None
        self._sse_events.clear()
        self.timings = {}
        if not self._notebook_src.is_file():
            raise MarimoServerError(f"notebook not found: {self._notebook_src}")
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="pairproxy-marimo-"))
            if self._workdir_arg is None
            else self._workdir_arg
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._copy_notebook:
            self.notebook = self.workdir / self._notebook_src.name
            shutil.copyfile(self._notebook_src, self.notebook)
        try:
            attempts = 1 if self._requested_port is not None else 2
            for attempt in range(attempts):
                try:
                    self._launch()
                    break
                except MarimoServerError as e:
                    bind_failed = "address already in use" in str(e).lower()
                    self._kill_process_tree(graceful=False)
                    if not bind_failed or attempt == attempts - 1:
                        raise
            if self._skew_protection:
                self.server_token = self._fetch_server_token()
            self._open_session()
            if self._auto_run:
                self.instantiate(auto_run=True, wait=True)
        except BaseException:
            self.stop()
            raise
        return self

    def _build_env(self) -> dict[str, str]:
        assert self.workdir is not None
        env = dict(os.environ)
        # Do not inherit a token, entry-point allow/deny lists, a scratch hook
        # or pairproxy's configuration by accident; pass them in ``env=``.
        for key in list(env):
            if key == "MARIMO_TOKEN" or (
                key.startswith("MARIMO_") and key.endswith(("_ALLOWLIST", "_DENYLIST"))
            ):
                del env[key]
        for key in ("PAIRPROXY_SCRATCH_HOOK", "PAIRPROXY_POLICY", "PAIRPROXY_LOG",
                    "PAIRPROXY_FSYNC", "PAIRPROXY_NOTEBOOK"):
            env.pop(key, None)
        xdg = {
            "XDG_CONFIG_HOME": self.workdir / "xdg-config",
            "XDG_STATE_HOME": self.workdir / "xdg-state",
            "XDG_CACHE_HOME": self.workdir / "xdg-cache",
        }
        for key, path in xdg.items():
            path.mkdir(parents=True, exist_ok=True)
            env[key] = str(path)
        if self._isolate_home:
            home = self.workdir / "home"
            home.mkdir(exist_ok=True)
            env["HOME"] = str(home)
        if self._user_config is not None:
            cfg = xdg["XDG_CONFIG_HOME"] / "marimo" / "marimo.toml"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(self._user_config, encoding="utf-8")
        if self._pythonpath:
            old = env.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join([*self._pythonpath, *([old] if old else [])])
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self._extra_env)
        return env

    def _launch(self) -> None:
        assert self.workdir is not None
        self.port = self._requested_port or find_free_port()
        self.env = self._build_env()
        start = self._launcher or [self.python, "-m", "marimo", "edit"]
        self.command = [
            *start, str(self.notebook),
            "--headless", "--no-token", "--no-sandbox", "--skip-update-check",
            "--host", _HOST, "--port", str(self.port),
            *([] if self._skew_protection else ["--no-skew-protection"]),
            *self._extra_args,
        ]  # fmt: skip
        t0 = time.monotonic()
        with (
            self.stdout_path.open("wb") as out,
            self.stderr_path.open("wb") as err,
        ):
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # own process group: killpg on stop
            )
        _LIVE.add(self)
        deadline = t0 + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise self._fail("marimo server exited during startup")
            if self._get_status("/health", timeout=1.0) == 200:
                # /health answered: make sure it was *our* process.
                time.sleep(0.05)
                if self.proc.poll() is not None:
                    raise self._fail("marimo server exited during startup")
                break
            if time.monotonic() > deadline:
                raise self._fail(f"marimo server did not answer /health within {self.startup_timeout:.0f}s")
            time.sleep(0.05)
        self.timings["health"] = time.monotonic() - t0
        self._t0 = t0

    def _fetch_server_token(self) -> str:
        status, body = self.request("GET", "/", session=False)
        found = re.search(rb'"serverToken":\s*"([^"]+)"', body)
        if status != 200 or found is None:
            raise self._fail(f"could not read the skew-protection token from GET / (HTTP {status})")
        return found.group(1).decode()

    def _get_status(self, path: str, timeout: float) -> int | None:
        conn = http.client.HTTPConnection(_HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    # ---------------------------------------------------------- session (SSE)

    def _open_session(self) -> None:
        conn = http.client.HTTPConnection(_HOST, self.port, timeout=10)
        try:
            conn.request(
                "GET",
                f"/sse?session_id={quote(self.session_id)}",
                headers={"Accept": "text/event-stream"},
            )
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise self._fail(f"could not open /sse session: {e!r}") from e
        if resp.status != 200:
            body = resp.read(2000).decode("utf-8", "replace")
            conn.close()
            raise self._fail(f"/sse returned HTTP {resp.status}: {body}")
        if conn.sock is not None:
            conn.sock.settimeout(None)  # held open indefinitely
        self._sse_conn = conn
        self._sse_thread = threading.Thread(
            target=self._sse_reader,
            args=(resp,),
            name=f"marimo-sse-{self.port}",
            daemon=True,
        )
        self._sse_thread.start()
        ready: dict[str, Any] | None = self.wait_for_event(
            lambda op, data: op == "kernel-ready", timeout=self.startup_timeout
        )
        if ready is None:
            raise self._fail(
                "session opened but no kernel-ready event arrived"
                + (f" (stream error: {self._sse_error!r})" if self._sse_error else "")
            )
        self.stable_session_id = ready.get("stable_session_id")
        self.cell_ids = list(ready.get("cell_ids") or [])
        self.timings["session"] = time.monotonic() - self._t0

    def _sse_reader(self, resp: http.client.HTTPResponse) -> None:
        try:
            for event in iter_sse(resp):
                try:
                    payload = json.loads(event.data)
                except ValueError:
                    payload = {"op": event.name, "data": event.data}
                if event.name == "close":
                    op, data = "close", payload
                else:
                    op = payload.get("op", event.name)
                    data = payload.get("data")
                with self._sse_cond:
                    self._sse_events.append((time.monotonic(), op, data))
                    self._sse_cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - reported via wait_for_event
            if not self._stopping:
                self._sse_error = e
        finally:
            with self._sse_cond:
                self._sse_closed = True
                self._sse_cond.notify_all()

    def session_events(self) -> list[tuple[float, str, Any]]:
        """Snapshot of ``(monotonic_time, op, data)`` received on ``/sse``."""
        with self._sse_cond:
            return list(self._sse_events)

    def wait_for_event(
        self,
        predicate: Any,
        *,
        timeout: float = 30.0,
        since: float | None = None,
    ) -> Any:
        """Wait for a session event with ``predicate(op, data)`` true.

        Only events received at or after the monotonic time ``since`` are
        considered (all events when ``None``).  Returns the event's ``data``
        (``{}`` when it has none) or ``None`` on timeout / stream end.
        """
        deadline = time.monotonic() + timeout
        with self._sse_cond:
            while True:
                for t, op, data in self._sse_events:
                    if (since is None or t >= since) and predicate(op, data):
                        return data if data is not None else {}
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._sse_closed:
                    return None
                self._sse_cond.wait(remaining)

    # ------------------------------------------------------------------ HTTP

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        session: bool = True,
    ) -> tuple[int, bytes]:
        """Plain HTTP request; JSON-encodes ``body``; adds the session header."""
        if self.port is None:
            raise MarimoServerError("server not started")
        hdrs = {"Content-Type": "application/json"}
        if session:
            hdrs["Marimo-Session-Id"] = self.session_id
        if self.server_token is not None:
            hdrs["Marimo-Server-Token"] = self.server_token
        hdrs.update(headers or {})
        data = None if body is None else json.dumps(body).encode("utf-8")
        conn = http.client.HTTPConnection(_HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise self._fail(f"{method} {path} failed: {e!r}") from e
        finally:
            conn.close()

    def post_json(self, path: str, body: Any, *, timeout: float = 30.0) -> Any:
        status, raw = self.request("POST", path, body, timeout=timeout)
        if status != 200:
            raise self._fail(f"POST {path} returned HTTP {status}: {raw[:2000].decode('utf-8', 'replace')}")
        return json.loads(raw) if raw else None

    def sessions(self) -> dict[str, Any]:
        """``GET /api/sessions``: {consumer id: {session_id, filename, path}}."""
        status, raw = self.request("GET", "/api/sessions", session=False)
        if status != 200:
            raise self._fail(f"GET /api/sessions returned HTTP {status}")
        sessions: dict[str, Any] = json.loads(raw)
        return sessions

    def instantiate(self, *, auto_run: bool = True, wait: bool = True, timeout: float = 60.0) -> None:
        """``POST /api/kernel/instantiate``; optionally wait for the run to end.

        Only the first instantiate of a session has an effect (the kernel
        ignores later ones, including the one ``/api/kernel/execute`` sends).
        """
        since = time.monotonic()
        self.post_json(
            "/api/kernel/instantiate",
            {"objectIds": [], "values": [], "autoRun": auto_run},
        )
        if wait:
            done = self.wait_for_event(lambda op, data: op == "completed-run", timeout=timeout, since=since)
            if done is None:
                raise self._fail(f"notebook did not finish its first run within {timeout:.0f}s")
        self.timings["ready"] = time.monotonic() - self._t0

    def interrupt(self) -> None:
        """``POST /api/kernel/interrupt``: stop the running cell."""
        self.post_json("/api/kernel/interrupt", {})

    def execute(self, code: str, *, timeout: float = 60.0) -> ExecResult:
        """Run ``code`` in the scratchpad via ``POST /api/kernel/execute``.

        ``timeout`` bounds the wait between two events of the response; on a
        timeout the connection is closed, which makes marimo interrupt the
        kernel, and :class:`MarimoServerError` is raised.
        """
        if self.port is None:
            raise MarimoServerError("server not started")
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(_HOST, self.port, timeout=timeout)
        events: list[SSEEvent] = []
        try:
            conn.request(
                "POST",
                "/api/kernel/execute",
                body=json.dumps({"code": code}).encode("utf-8"),
                headers={
                    "Content-Type": "application/json",
                    "Marimo-Session-Id": self.session_id,
                },
            )
            resp = conn.getresponse()
            if resp.status != 200:
                raw = resp.read(4000).decode("utf-8", "replace")
                raise self._fail(f"/api/kernel/execute returned HTTP {resp.status}: {raw}")
            stdout: list[str] = []
            stderr: list[str] = []
            for event in iter_sse(resp):
                events.append(event)
                payload = event.json()
                if event.name == "stdout":
                    stdout.append(payload["data"])
                elif event.name == "stderr":
                    stderr.append(payload["data"])
                elif event.name == "done":
                    out = payload.get("output") or {}
                    data = out.get("data") or None
                    return ExecResult(
                        stdout="".join(stdout),
                        stderr="".join(stderr),
                        success=bool(payload.get("success")),
                        output_mimetype=(out.get("mimetype") or None) if data else None,
                        output_data=data,
                        elapsed=time.monotonic() - t0,
                        events=tuple(events),
                    )
        except TimeoutError as e:
            raise self._fail(
                f"execute timed out after {timeout:g}s without an event; the "
                "connection was closed, which interrupts the kernel"
            ) from e
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            raise self._fail(f"execute stream failed: {e!r}") from e
        finally:
            conn.close()
        raise self._fail(
            "execute stream ended without a done event; the code may have run. "
            f"events received: {[e.name for e in events]}"
        )

    def run_owner_code(self, code: str, *, timeout: float = 60.0) -> ExecResult:
        """Run ``code`` the way the *browser's scratchpad panel* does (the notebook
        owner's tool): ``POST /api/kernel/scratchpad/run``, results read from the
        session's ``/sse`` stream.

        Unlike :meth:`execute` (the agents' endpoint) this command carries no HTTP
        request and no notebook document into the kernel, which is how pairproxy tells
        the owner's panel from an agent.  Output is reported like :meth:`execute`
        (``output_data`` is the raw output of the run, not reduced to text/plain).
        """
        since = time.monotonic()
        self.post_json("/api/kernel/scratchpad/run", {"code": code}, timeout=timeout)
        planned = self.wait_for_event(
            lambda op, data: op == "execution" and data.get("phase") == "planned"
            and data.get("cell_id") == "__scratch__" and data.get("code") == code,
            timeout=timeout, since=since,
        )
        if planned is None:
            raise self._fail(f"the scratchpad panel run did not start within {timeout:g}s")
        exec_id, run_id = planned.get("execution_id"), planned.get("run_id")
        done = self.wait_for_event(
            lambda op, data: op == "completed-run" and data.get("run_id") == run_id,
            timeout=timeout, since=since,
        )
        if done is None:
            raise self._fail(f"the scratchpad panel run did not finish within {timeout:g}s")
        stdout: list[str] = []
        stderr: list[str] = []
        mimetype = data_out = None
        failed = False
        for _t, op, data in self.session_events():
            if _t < since or op != "cell-op" or data.get("execution_id") != exec_id:
                continue
            console = data.get("console") or []
            for item in console if isinstance(console, list) else [console]:
                (stdout if item.get("channel") == "stdout" else stderr).append(str(item.get("data", "")))
            out = data.get("output")
            if out:
                if out.get("channel") == "marimo-error":
                    failed = True
                elif out.get("data") not in (None, ""):
                    mimetype, data_out = out.get("mimetype"), str(out.get("data"))
        return ExecResult(
            stdout="".join(stdout), stderr="".join(stderr),
            success=not failed and done.get("outcome") in (None, "succeeded"),
            output_mimetype=mimetype, output_data=data_out, elapsed=time.monotonic() - since,
        )

    # ----------------------------------------------------------- marimo pair

    def pair_execute(
        self, code: str, *, stream: bool = False, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``marimo pair execute --url URL --session STABLE_ID -c CODE``.

        Uses the server's environment (same XDG dirs, so ``marimo pair
        notebook list`` would find this server too).  Without ``--stream``
        stdout is one JSON object: success, output, stdout, stderr, session.
        Exit code 0 on success, 1 when the code failed, 2 on a pairing error.
        """
        if self.stable_session_id is None:
            raise MarimoServerError("no stable session id (server not started?)")
        cmd = [
            self.python, "-m", "marimo", "pair", "execute",
            "--url", self.url, "--session", self.stable_session_id, "-c", code,
            *(["--stream"] if stream else []),
        ]  # fmt: skip
        return subprocess.run(
            cmd,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    # ------------------------------------------------------------------ stop

    def _close_sse(self) -> None:
        conn, self._sse_conn = self._sse_conn, None
        if conn is None:
            return
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        if self._sse_thread is not None:
            self._sse_thread.join(timeout=2)

    def _kill_process_tree(self, timeout: float = 5.0, *, graceful: bool = True) -> None:
        proc = self.proc
        if proc is None:
            return
        tree = _descendants(proc.pid)
        if graceful and proc.poll() is None and "health" in self.timings:
            # marimo's own shutdown: closes sessions and kernels cleanly (exit
            # code 0, no leaked-semaphore warning).
            with contextlib.suppress(MarimoServerError):
                status, _ = self.request("POST", "/api/kernel/shutdown", {}, timeout=min(timeout, 3.0))
                if status == 200:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=timeout)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # pgid == pid
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        # The kernel calls os.setsid(), so it is not in the server's group.
        # Its parent poller would kill it within ~1 s of the server's death;
        # give a graceful shutdown a moment, then do not wait for that.
        deadline = time.monotonic() + 0.5
        for pid in tree:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.proc = None
        _LIVE.discard(self)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (idempotent); remove ``workdir`` if we created it."""
        self._stopping = True
        try:
            self._close_sse()
            t0 = time.monotonic()
            self._kill_process_tree(timeout)
            if "health" in self.timings:
                self.timings["stop"] = time.monotonic() - t0
        finally:
            if self._own_workdir and self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<MarimoServer {self._describe()} session={self.session_id!r}>"
