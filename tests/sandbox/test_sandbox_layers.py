"""Layer 2 on its own: plain, unrestricted Python in the real worker, as if layer 1 had been bypassed.

Each test starts real sandbox workers whose restricted dialect is switched off:
the host's compile check accepts anything, the worker compiles mechanism source
with plain ``compile`` and runs it with the full builtins, and the attacker
already holds ``os``, ``socket``, ``subprocess`` and ``ctypes`` (imported
before hardening). Then the worker hardens itself with one OS layer, or all of
them, and each attack (write a file, connect to a socket the host listens on,
start a process, fork, call libc through ctypes, delete a file of the host's)
runs as a hook. Issue 11 adds attacks on the layers below the policy: rebind
the audit hook's refusal, forge a line on the protocol channel, kill another
process of the sandbox's uid through a pidfd, and leave a SysV shared-memory
segment behind for a later worker. The host's authentication of the channel
(``channel``) counts as a layer of its own here: switched off, the host takes
any line.

A control run with no OS layer shows that every attack really works; each
layer then stops the attacks it claims to stop (``SECURITY.md`` has the
table), and with every layer on, the audit hook refuses them all as policy
violations. Layers the machine does not offer (netns, uid, seccomp) are
skipped with the reason.
"""

from __future__ import annotations

import ctypes
import os
import random
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bilevel.sandbox.process as process_module
import bilevel.sandbox.session as session_module
from bilevel.sandbox import Limits, Outcome, SandboxSession, Status
from bilevel.sandbox.channel import TAG_HEX
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
    # Rebind the refusal the audit hook calls, then do what it refuses.
    "refuse_rebind": '''
        import sys
        sys.modules["bilevel.sandbox.policy"].refuse = lambda *args, **kwargs: None
        sys.modules["bilevel.sandbox.guards"].refuse = lambda *args, **kwargs: None
        fd = os.open(TARGET, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        return True
    ''',
    # Write an OK outcome of our choosing (and the end of the request) straight onto the protocol pipe.
    "forge_channel": '''
        import stat
        lines = b'{"exit":"forge_channel","outcome":{"status":"ok","value":true}}\\n{"done":true,"cpu_s":0}\\n'
        for fd in range(3, 64):
            try:
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    continue
                os.write(fd, lines)
            except OSError:
                continue
            os._exit(0)
        return None
    ''',
    # Kill another process of the sandbox's uid (a sleeper standing in for another worker) through a pidfd.
    "pidfd_kill": '''
        fd = os.pidfd_open(PEER_PID)
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return None
    ''',
    # Leave a SysV shared-memory segment behind, where the host (or a later worker) can find it.
    "sysv_shm": '''
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget(SHM_KEY, 4096, 0o1000 | 0o666)
        return None
    ''',
}

# Attacks that raise no audit event (a pidfd, a write to an open fd): the audit hook cannot see them.
UNAUDITED = {"forge_channel", "pidfd_kill"}
# What each layer alone must stop (with layer 1 bypassed). The audit hook stops everything it can see.
STOPS: dict[str, set[str]] = {
    "audit": set(ATTACKS) - UNAUDITED,
    "seccomp": {"file_write", "socket_connect", "subprocess", "fork", "ctypes_open", "ctypes_socket", "unlink",
                "refuse_rebind", "pidfd_kill", "sysv_shm"},
    "netns": {"socket_connect"},
    "ipcns": {"sysv_shm"},
    # As nobody, with RLIMIT_NPROC 0: no write in a directory only root may write to, no new process.
    "uid": {"file_write", "ctypes_open", "subprocess", "fork", "unlink", "refuse_rebind"},
    "channel": {"forge_channel"},
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
        self.shm_key = random.randrange(1 << 20, 1 << 30)
        # another process of the sandbox's uid (nobody when the host is root): the pidfd attack's victim
        self.peer = subprocess.Popen(["sleep", "300"], user=65534 if os.getuid() == 0 else None)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]

    def close(self) -> None:
        self.listener.close()
        self.peer.kill()
        self.peer.wait()
        self.remove_shm()

    def peer_died(self, waited: bool) -> bool:
        """Whether the attack's victim is dead; after an attack that ran to the end, give SIGKILL time to land
        (a loaded machine may not have scheduled the victim's death by the time the call returns)."""
        if waited:
            try:
                self.peer.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                return False
        return self.peer.poll() is not None

    def shm_ids(self) -> list[int]:
        """The ids of SysV segments with the attack's key in the host's IPC namespace."""
        try:
            rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        except OSError:
            return []
        return [int(r.split()[1]) for r in rows if int(r.split()[0]) == self.shm_key]

    def remove_shm(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        for shmid in self.shm_ids():
            libc.shmctl(shmid, 0, None)  # IPC_RMID

    def paths(self, attack: str) -> dict[str, Path]:
        return {"TARGET": self.dir / f"{attack}-file", "MARKER": self.dir / f"{attack}-marker",
                "CTYPES_TARGET": self.dir / f"{attack}-ctypes"}

    def victim(self, attack: str) -> Path:
        """A file of the host's that the ``unlink`` attack tries to delete."""
        return self.dir / f"{attack}-victim"

    def source(self, attack: str) -> str:
        consts = "".join(f"{k} = {str(v)!r}\n" for k, v in self.paths(attack).items())
        consts += f"VICTIM = {str(self.victim(attack))!r}\nPEER_PID = {self.peer.pid}\nSHM_KEY = {self.shm_key}\n"
        body = textwrap.indent(textwrap.dedent(ATTACKS[attack]), "    ")
        return (f"import ctypes, os, signal, socket, subprocess\n{consts}PORT = {self.port}\n\n"
                f"def propose(ctx, state):\n{body}")

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
        if "channel" not in only:
            monkeypatch.setattr(process_module, "Verifier", TrustingVerifier)
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
                               or self.connections() > before or not self.victim(attack).exists()
                               or (attack == "pidfd_kill" and self.peer_died(waited=out.ok))
                               or (attack == "sysv_shm" and bool(self.shm_ids())))
                happened[attack] = side_effect or (out.ok and out.value is True)
        return Probe(layers, outcomes, happened)


class TrustingVerifier:
    """The host without the channel layer: it takes any line, tagged or not."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def open(self, line: bytes) -> bytes:
        tagged = len(line) > TAG_HEX and line[TAG_HEX:TAG_HEX + 1] == b" " and not line.startswith(b"{")
        return line[TAG_HEX + 1:] if tagged else line


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
    probe = host.probe(monkeypatch, only=(*OS_LAYERS, "channel"))
    assert {"rlimit", "audit"} <= set(probe.layers)
    assert probe.happened == {attack: False for attack in ATTACKS}, probe.outcomes
    events = {"file_write": "'open'", "socket_connect": "'socket.", "subprocess": "'subprocess.Popen'",
              "fork": "'os.fork'", "ctypes_open": "'ctypes.dlopen'", "ctypes_socket": "'ctypes.dlopen'",
              "unlink": "'os.remove'", "refuse_rebind": "'open'", "sysv_shm": "'ctypes.dlopen'"}
    for attack, out in probe.outcomes.items():
        if attack in UNAUDITED:
            assert not out.ok, (attack, out)
            continue
        assert out.status is Status.POLICY_VIOLATION and out.layer == "audit", (attack, out)
        assert "refused" in out.message and events[attack] in out.message, (attack, out)
    forged = probe.outcomes["forge_channel"]
    assert forged.status is Status.CRASH and "unauthenticated line" in forged.message, forged


@pytest.mark.parametrize("layer", sorted(STOPS))
def test_one_layer_alone_stops_its_attacks(layer: str, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    if layer == "seccomp" and import_seccomp() is None:
        pytest.skip("pyseccomp or libseccomp.so.2 is missing: the worker records seccomp as inactive")
    probe = host.probe(monkeypatch, only=(layer,))
    if layer != "channel" and layer not in probe.layers:
        pytest.skip(f"the {layer} layer is not available on this machine (active: {probe.layers})")
    for attack in STOPS[layer]:
        assert not probe.happened[attack], (layer, attack, probe.outcomes[attack])
        if attack not in ("ctypes_open", "ctypes_socket", "sysv_shm"):  # a libc call says no by its return value
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
