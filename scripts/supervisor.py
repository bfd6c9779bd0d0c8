"""Keep the stack's parts running: restart a dead or hung part with backoff while the others serve.

`make run` drives `Supervisor.run()` in the foreground; the fault tests drive the same loop in a
thread. A part is its own process group (`Stack.start` uses a new session), so a restart or a stop
reaches its children too (the action server's Sanic worker, for one), and each direct child gets
SIGTERM if the supervisor dies (PR_SET_PDEATHSIG). What a `kill -9` of the supervisor still leaves
behind is found at the next start (`clear_leftovers`), by the process groups recorded in
`var/stack.pids`, or named by the port it holds (`port_holder`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx


class Supervised(Protocol):
    """What the supervisor needs of a stack (`scripts.stack.Stack` is one): its processes by name,
    their ports, its var folder, and a way to start some of them again."""

    procs: dict[str, subprocess.Popen[bytes]]
    ports: dict[str, int]
    var: Path

    def start(self, secrets: dict[str, str], names: list[str] | None = None) -> None: ...


PR_SET_PDEATHSIG = 1
HEALTH_PATHS = {"actions": "/health", "gateway": "/healthz"}  # Rasa servers: /version


_prctl: Callable[..., int] | None
try:  # looked up once here: between fork and exec the child should do as little as possible
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: leftovers are then found at the next start
    _prctl = None


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the thread that started it exits (Linux only)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a whole process group; False when nothing in it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if stat[0] != "Z" and int(stat[2]) == pgid:
            members.append(int(entry.name))
    return members


def port_holder(port: int) -> tuple[int, str] | None:
    """The process listening on a loopback TCP port, as (pid, command line); None if the port is free."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(cols[9])
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name), _cmdline(int(entry.name))
        except OSError:
            continue
    return -1, "another user's process"  # listening, but not ours to see


def clear_leftovers(pids_file: Path, marker: str, say: Callable[[str], None] = print) -> None:
    """Stop the process groups a previous run recorded and left behind (its supervisor was killed)."""
    try:
        recorded: dict[str, int] = json.loads(pids_file.read_text())
    except (OSError, ValueError):
        return
    for name, pgid in recorded.items():
        members = [p for p in group_members(pgid) if marker in _cmdline(p)]
        if members:  # still ours (the command line names this checkout), not a reused id
            say(f"Stopping the {name} a previous run left behind (process group {pgid}).")
            kill_group(pgid, signal.SIGKILL)
    pids_file.unlink(missing_ok=True)


def busy_ports(ports: dict[str, int]) -> list[str]:
    """One sentence per port that something else holds, naming the process and how to stop it."""
    out = []
    for name, port in ports.items():
        holder = port_holder(port)
        if holder is not None:
            pid, cmd = holder
            stop = f"stop it with `kill {pid}`" if pid > 0 else "stop it, or choose another port"
            out.append(f"port {port} ({name}) is held by pid {pid}: {cmd[:120]}; {stop} (or set PORT_{name.upper()})")
    return out


class GaveUp(RuntimeError):
    """A part failed to start too many times in a row."""


@dataclass
class Part:
    started: float
    healthy: bool = False
    failures: int = 0  # starts in a row that never became healthy
    restarts: int = 0
    unanswered_since: float | None = None  # a healthy part that stopped answering its health check
    due: float | None = None  # when it is to be started again


@dataclass
class Supervisor:
    """Watch the stack's processes; restart what dies (or hangs) with exponential backoff."""

    stack: Supervised
    secrets: dict[str, str]
    max_failures: int = 5  # a part that fails to start this many times in a row stops everything
    hang_seconds: float = 30.0  # a healthy part silent this long is killed and restarted
    backoff: tuple[float, float] = (1.0, 30.0)  # first delay, cap; doubles per failure in a row
    say: Callable[[str], None] = print
    parts: dict[str, Part] = field(default_factory=dict)
    restarts: list[tuple[float, str, str]] = field(default_factory=list)  # (when, part, why)
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=2.0))

    def __post_init__(self) -> None:
        now = time.monotonic()
        self.parts = {name: Part(started=now) for name in self.stack.procs}

    def _health_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.stack.ports[name]}{HEALTH_PATHS.get(name, '/version')}"

    def _answers(self, name: str) -> bool:
        # The action server answers only callers with its secret (actions/serve.py), its health check too.
        secret = self.secrets.get("ACTION_SERVER_SECRET", "") if name == "actions" else ""
        headers = {"X-Action-Secret": secret} if secret else {}
        try:
            return self._http.get(self._health_url(name), headers=headers).status_code == 200
        except httpx.HTTPError:
            return False

    def _delay(self, failures: int) -> float:
        first, cap = self.backoff
        return float(min(cap, first * 2.0 ** max(0, failures - 1)))

    def _note(self, text: str) -> None:
        self.say(f"[{time.strftime('%H:%M:%S')}] {text}")

    def _schedule(self, name: str, why: str) -> None:
        part = self.parts[name]
        proc = self.stack.procs.pop(name)
        kill_group(proc.pid)  # whatever the dead part left behind in its group goes with it
        proc.wait()
        if not part.healthy:
            part.failures += 1
        if part.failures >= self.max_failures:
            raise GaveUp(f"{name} failed to start {part.failures} times in a row ({why}); see var/{name}.log")
        delay = self._delay(max(1, part.failures))
        part.due, part.restarts = time.monotonic() + delay, part.restarts + 1
        self.restarts.append((time.time(), name, why))
        self._note(f"{name} {why}; restarting in {delay:.0f}s (restart {part.restarts}, failed starts {part.failures})")

    def poll(self) -> None:
        """One look at every part: reap, restart when due, notice hangs. Raises GaveUp."""
        now = time.monotonic()
        for name, part in self.parts.items():
            proc = self.stack.procs.get(name)
            if proc is None:
                if part.due is not None and now >= part.due:
                    self.stack.start(self.secrets, names=[name])
                    part.started, part.healthy, part.due, part.unanswered_since = now, False, None, None
                    self.record()
                continue
            code = proc.poll()
            if code is not None:
                how = f"signal {-code}" if code < 0 else f"code {code}"
                up = f"after {now - part.started:.0f}s" + ("" if part.healthy else " without becoming healthy")
                self._schedule(name, f"exited ({how}) {up}")
                continue
            answers = self._answers(name)
            if answers:
                part.healthy, part.failures, part.unanswered_since = True, 0, None
            elif part.healthy:
                part.unanswered_since = part.unanswered_since or now
                if now - part.unanswered_since >= self.hang_seconds:
                    kill_group(proc.pid)
                    self._schedule(name, f"stopped answering for {now - part.unanswered_since:.0f}s (hung)")
            elif now - part.started > 300:  # never became healthy: a start that failed
                kill_group(proc.pid)
                self._schedule(name, "did not become healthy in 300s")

    def record(self) -> None:
        """Write the parts' process groups, so a later run can stop what a killed supervisor left."""
        pids = {name: proc.pid for name, proc in self.stack.procs.items()}
        (self.stack.var / "stack.pids").write_text(json.dumps(pids))

    def run(self, stop: threading.Event | None = None, interval: float = 1.0) -> None:
        """Supervise until `stop` is set (or KeyboardInterrupt); raises GaveUp."""
        self.record()
        while stop is None or not stop.is_set():
            self.poll()
            if stop is not None:
                stop.wait(interval)
            else:
                time.sleep(interval)
