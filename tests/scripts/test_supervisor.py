"""The supervisor with small stand-in parts: restarts, backoff, giving up, hangs, orphans, busy ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.stack import free_port
from scripts.supervisor import GaveUp, Supervisor, busy_ports, clear_leftovers, die_with_parent, group_members

# A part: answers 200 on its port, and starts a child that would keep running if left alone.
SERVE = """
import http.server, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
CRASH = "import sys; sys.exit(3)"


@dataclass
class FakeStack:
    """What the supervisor needs of a Stack: processes, ports, a var directory, and start()."""

    var: Path
    scripts: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, secrets: dict[str, str], names: list[str] | None = None) -> None:
        for name in names or list(self.scripts):
            self.ports.setdefault(name, free_port())
            cmd = [sys.executable, "-c", self.scripts[name], str(self.ports[name])]
            self.procs[name] = subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until(check, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = FakeStack(tmp_path, {"actions": SERVE, "gateway": SERVE})
    yield s
    s.stop()


def test_a_killed_part_is_restarted_alone_and_its_children_die_with_it(stack: FakeStack) -> None:
    stack.start({})
    lines: list[str] = []
    sup = Supervisor(stack, {}, backoff=(0.1, 1.0), say=lines.append)  # type: ignore[arg-type]
    wait_until(lambda: (sup.poll(), all(p.healthy for p in sup.parts.values()))[1])
    old, gateway = stack.procs["actions"].pid, stack.procs["gateway"].pid
    wait_until(lambda: len(group_members(old)) == 2)  # the part and its child
    os.kill(old, signal.SIGKILL)  # the part only, as an operator would: its child is left
    wait_until(lambda: (sup.poll(), stack.procs.get("actions") is not None and stack.procs["actions"].pid != old)[1])
    assert group_members(old) == []  # the orphaned child went with its part
    assert stack.procs["gateway"].pid == gateway  # the other part kept running
    assert len(lines) == 1 and "actions exited (signal 9)" in lines[0] and "restart 1" in lines[0]
    wait_until(lambda: (sup.poll(), sup.parts["actions"].healthy)[1])
    assert json.loads((stack.var / "stack.pids").read_text())["actions"] == stack.procs["actions"].pid


def test_a_part_that_fails_to_start_n_times_in_a_row_stops_everything(tmp_path: Path) -> None:
    stack = FakeStack(tmp_path, {"actions": CRASH})
    stack.start({})
    lines: list[str] = []
    sup = Supervisor(stack, {}, max_failures=3, backoff=(0.05, 0.1), say=lines.append)  # type: ignore[arg-type]
    with pytest.raises(GaveUp, match="actions failed to start 3 times in a row"):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sup.poll()
            time.sleep(0.05)
    assert len(lines) == 2  # two restarts announced, then the third failure gives up
    stack.stop()


def test_a_hung_part_is_killed_and_restarted(stack: FakeStack) -> None:
    stack.start({})
    lines: list[str] = []
    sup = Supervisor(stack, {}, hang_seconds=1.0, backoff=(0.1, 1.0), say=lines.append)  # type: ignore[arg-type]
    wait_until(lambda: (sup.poll(), sup.parts["actions"].healthy)[1])
    old = stack.procs["actions"].pid
    os.killpg(old, signal.SIGSTOP)
    wait_until(lambda: (sup.poll(), stack.procs.get("actions") is not None and stack.procs["actions"].pid != old)[1])
    assert "hung" in lines[0] and group_members(old) == []


def test_leftovers_of_a_killed_supervisor_are_stopped_and_busy_ports_named(stack: FakeStack) -> None:
    stack.start({}, names=["actions"])
    pid, port = stack.procs["actions"].pid, stack.ports["actions"]
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0)
    [line] = busy_ports({"actions": port})
    assert f"held by pid {pid}" in line and f"kill {pid}" in line and "PORT_ACTIONS" in line
    (stack.var / "stack.pids").write_text(json.dumps({"actions": pid}))
    clear_leftovers(stack.var / "stack.pids", "http.server", say=lambda _: None)
    stack.procs["actions"].wait(timeout=5)
    assert group_members(pid) == [] and busy_ports({"actions": port}) == []


def test_a_part_gets_sigterm_when_its_supervisor_is_killed() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "from scripts.supervisor import die_with_parent\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
            " start_new_session=True, preexec_fn=die_with_parent)\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert group_members(child) == [child]  # its own process group, alive
    parent.kill()  # kill -9: no chance to clean up
    parent.wait()
    wait_until(lambda: group_members(child) == [], seconds=10)
