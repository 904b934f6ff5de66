"""Layer 2 on its own: plain, unrestricted Python in the real worker, as if layer 1 had been bypassed.

Each test starts real sandbox workers whose restricted dialect is switched off:
the host's compile check accepts anything, the worker compiles mechanism source
with plain ``compile`` and runs it with the full builtins, and the attacker
already holds ``os``, ``socket``, ``subprocess`` and ``ctypes`` (imported
before hardening). Then the worker hardens itself with one OS layer, or all of
them, and each attack (write a file, connect to a socket the host listens on,
start a process, fork, call libc through ctypes, delete a file of the host's)
runs as a hook.

A control run with no OS layer shows that every attack really works; each
layer then stops the attacks it claims to stop (``SECURITY.md`` has the
table), and with every layer on, the audit hook refuses them all as policy
violations. Layers the machine does not offer (netns, uid, seccomp) are
skipped with the reason.
"""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bilevel.sandbox.session as session_module
from bilevel.sandbox import Limits, Outcome, SandboxSession, Status
from bilevel.sandbox.session import ROOT
from bilevel.sandbox.worker import OS_LAYERS, import_seccomp

SPACE: dict[str, Any] = {"params": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False}]}
# Generous: these calls do little, but the machine is shared and may be loaded.
LIMITS = Limits(call_timeout_s=20.0, run_timeout_s=120.0, memory_bytes=768 << 20)

BYPASS_WORKER = textwrap.dedent('''
    import ast, ctypes, functools, os, socket, subprocess, sys
    sys.path.insert(0, ROOT)
    from bilevel.sandbox import policy, worker
    from bilevel.sandbox.outcome import Outcome, Status

    def compile_plain(source, filename="<mechanism>"):
        hooks = policy.hook_names(ast.parse(source))
        return compile(source, filename, "exec"), Outcome(Status.OK, value={"hooks": hooks})

    def plain_globals(modules, name="mechanism"):
        return {"__builtins__": __builtins__, "__name__": name}

    policy.compile_source = compile_plain
    policy.restricted_globals = plain_globals
    worker.harden = functools.partial(worker.harden, only=ONLY)
    worker.main()
''')

# Each attack returns True only when it fully succeeded; the host also looks for its side effects.
ATTACKS: dict[str, str] = {
    "file_write": '''
        fd = os.open(TARGET, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"escaped")
        os.close(fd)
        return True
    ''',
    "socket_connect": '''
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.settimeout(5)
        conn.connect(("127.0.0.1", PORT))
        conn.sendall(b"escaped")
        conn.close()
        return True
    ''',
    "subprocess": '''
        done = subprocess.run(["/bin/sh", "-c", "echo escaped > " + MARKER], timeout=10)
        return done.returncode == 0
    ''',
    "fork": '''
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return True
    ''',
    "ctypes_open": '''
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.open(CTYPES_TARGET.encode(), os.O_WRONLY | os.O_CREAT, 0o600)
        return fd >= 0
    ''',
    "ctypes_socket": '''
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0) >= 0
    ''',
    "unlink": '''
        os.unlink(VICTIM)
        return True
    ''',
}

# What each OS layer alone must stop (with layer 1 bypassed). The audit hook stops everything.
STOPS: dict[str, set[str]] = {
    "audit": set(ATTACKS),
    "seccomp": {"file_write", "socket_connect", "subprocess", "fork", "ctypes_open", "ctypes_socket", "unlink"},
    "netns": {"socket_connect"},
    # As nobody, with RLIMIT_NPROC 0: no write in a directory only root may write to, no new process.
    "uid": {"file_write", "ctypes_open", "subprocess", "fork", "unlink"},
}


@dataclass(frozen=True)
class Probe:
    """The outcome of every attack under one set of layers, and what the host saw happen."""

    layers: tuple[str, ...]
    outcomes: dict[str, Outcome]
    happened: dict[str, bool]


class Host:
    """The host side of the attacks: target paths in a private directory, and a listening socket."""

    def __init__(self, directory: Path) -> None:
        directory.chmod(0o700)  # nobody (the uid layer) cannot write here
        self.dir = directory
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]

    def close(self) -> None:
        self.listener.close()

    def paths(self, attack: str) -> dict[str, Path]:
        return {"TARGET": self.dir / f"{attack}-file", "MARKER": self.dir / f"{attack}-marker",
                "CTYPES_TARGET": self.dir / f"{attack}-ctypes"}

    def victim(self, attack: str) -> Path:
        """A file of the host's that the ``unlink`` attack tries to delete."""
        return self.dir / f"{attack}-victim"

    def source(self, attack: str) -> str:
        consts = "".join(f"{k} = {str(v)!r}\n" for k, v in self.paths(attack).items())
        consts += f"VICTIM = {str(self.victim(attack))!r}\n"
        body = textwrap.indent(textwrap.dedent(ATTACKS[attack]), "    ")
        return f"import ctypes, os, socket, subprocess\n{consts}PORT = {self.port}\n\ndef propose(ctx, state):\n{body}"

    def connections(self) -> int:
        n = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def probe(self, monkeypatch: pytest.MonkeyPatch, only: tuple[str, ...]) -> Probe:
        """Run every attack in a bypassed worker hardened with ``only``."""
        script = BYPASS_WORKER.replace("ROOT", repr(ROOT)).replace("ONLY", repr(only))
        monkeypatch.setattr(session_module, "worker_command", lambda root=ROOT: [session_module.sys.executable,
                                                                                 "-s", "-P", "-c", script])
        monkeypatch.setattr(session_module, "compile_mechanism",
                            lambda source, filename="": Outcome(Status.OK, value={"hooks": ["propose"]}))
        outcomes: dict[str, Outcome] = {}
        happened: dict[str, bool] = {}
        mechanisms = [(attack, self.source(attack)) for attack in ATTACKS]
        with SandboxSession(mechanisms, SPACE, seed=1, budget=4, limits=LIMITS) as session:
            loaded = session.start()
            assert all(out.ok for out in loaded.values()), loaded
            layers = session.layers
            for attack in ATTACKS:
                self.victim(attack).write_text("the host's")
                before = self.connections()
                out = session.call(attack, "propose", 0, {})
                outcomes[attack] = out
                side_effect = (any(p.exists() for p in self.paths(attack).values())
                               or self.connections() > before or not self.victim(attack).exists())
                happened[attack] = side_effect or (out.ok and out.value is True)
        return Probe(layers, outcomes, happened)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path)
    yield h
    h.close()


def test_without_os_layers_every_attack_works(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the attacks are real, so the tests below can fail."""
    probe = host.probe(monkeypatch, only=())
    assert probe.layers == ("policy", "timeout")
    assert probe.happened == {attack: True for attack in ATTACKS}, probe.outcomes


def test_every_layer_together_refuses_every_attack(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = host.probe(monkeypatch, only=OS_LAYERS)
    assert {"rlimit", "audit"} <= set(probe.layers)
    assert probe.happened == {attack: False for attack in ATTACKS}, probe.outcomes
    events = {"file_write": "'open'", "socket_connect": "'socket.", "subprocess": "'subprocess.Popen'",
              "fork": "'os.fork'", "ctypes_open": "'ctypes.dlopen'", "ctypes_socket": "'ctypes.dlopen'",
              "unlink": "'os.remove'"}
    for attack, out in probe.outcomes.items():
        assert out.status is Status.POLICY_VIOLATION and out.layer == "audit", (attack, out)
        assert "refused" in out.message and events[attack] in out.message, (attack, out)


@pytest.mark.parametrize("layer", sorted(STOPS))
def test_one_layer_alone_stops_its_attacks(layer: str, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    if layer == "seccomp" and import_seccomp() is None:
        pytest.skip("pyseccomp or libseccomp.so.2 is missing: the worker records seccomp as inactive")
    probe = host.probe(monkeypatch, only=(layer,))
    if layer not in probe.layers:
        pytest.skip(f"the {layer} layer is not available on this machine (active: {probe.layers})")
    for attack in STOPS[layer]:
        assert not probe.happened[attack], (layer, attack, probe.outcomes[attack])
        if attack != "ctypes_open" and attack != "ctypes_socket":
            assert not probe.outcomes[attack].ok, (layer, attack, probe.outcomes[attack])


def test_rlimits_alone_stop_memory_and_file_growth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RLIMIT_AS turns a memory bomb into MEMORY; RLIMIT_FSIZE=0 lets no byte reach a file."""
    host = Host(tmp_path)
    try:
        target = tmp_path / "grown"
        script = BYPASS_WORKER.replace("ROOT", repr(ROOT)).replace("ONLY", repr(("rlimit",)))
        monkeypatch.setattr(session_module, "worker_command", lambda root=ROOT: [session_module.sys.executable,
                                                                                 "-s", "-P", "-c", script])
        monkeypatch.setattr(session_module, "compile_mechanism",
                            lambda source, filename="": Outcome(Status.OK, value={"hooks": ["propose"]}))
        bomb = "def propose(ctx, state):\n    return len(bytearray(4 << 30))\n"
        grow = (f"import os\ndef propose(ctx, state):\n    fd = os.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)\n"
                "    return os.write(fd, b'x' * 4096)\n")
        with SandboxSession([("bomb", bomb), ("grow", grow)], SPACE, seed=1, budget=4, limits=LIMITS) as session:
            assert all(out.ok for out in session.start().values())
            assert session.layers == ("policy", "rlimit", "timeout")
            out = session.call("bomb", "propose", 0, {})
            assert out.status is Status.MEMORY and out.layer == "rlimit", out
            out = session.call("grow", "propose", 0, {})
            assert out.status is Status.CRASH and "File too large" in out.message, out
        assert target.exists() and target.stat().st_size == 0  # created (other layers stop that), never grown
    finally:
        host.close()


DEGRADED_WORKER = textwrap.dedent('''
    import sys
    sys.path.insert(0, ROOT)
    from bilevel.sandbox import worker
    worker.import_seccomp = lambda: None   # as on a machine without pyseccomp or libseccomp.so.2
    worker.try_netns = lambda: False       # as on a machine without network namespaces
    worker.main()
''')


def test_a_machine_without_seccomp_or_netns_records_it_and_the_rest_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    script = DEGRADED_WORKER.replace("ROOT", repr(ROOT))
    monkeypatch.setattr(session_module, "worker_command", lambda root=ROOT: [session_module.sys.executable,
                                                                             "-s", "-P", "-c", script])
    good = "def propose(ctx, state):\n    return {'x': 0.25}\n"
    bad = "def propose(ctx, state):\n    import socket\n    return None\n"
    with SandboxSession([("good", good), ("bad", bad)], SPACE, seed=1, budget=4, limits=LIMITS) as session:
        assert all(out.ok for out in session.start().values())
        assert "seccomp" not in session.layers and "netns" not in session.layers
        assert {"policy", "rlimit", "audit", "timeout"} <= set(session.layers)
        assert session.call("good", "propose", 0, {}).value == {"x": 0.25}
        out = session.call("bad", "propose", 0, {})
        assert out.status is Status.POLICY_VIOLATION and "'socket'" in out.message
