"""Layer 2's hardening: what the worker process does to itself before it runs mechanism code.

Called once per worker by ``sandbox.worker.main``, after the warm-up and
before the first request: a network namespace where it can (root, or an
unprivileged user namespace), rlimits (address space, CPU, file size, open
files, core), drops root to ``nobody``, a seccomp filter if ``pyseccomp`` and
``libseccomp.so.2`` are there, and finally an audit hook that refuses file,
network, process, ctypes and import events (everything but a short list
while mechanism code runs, see :func:`mechanism_mode`).

It may import ``bilevel.sandbox.policy`` (for :class:`PolicyViolation`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import sys
from collections.abc import Callable, Collection
from types import CodeType
from typing import Any, NoReturn

from bilevel.sandbox import policy
from bilevel.sandbox.lifetime import die_with_parent

NOBODY = 65534
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWIPC = 0x08000000
CLONE_THREAD = 0x00010000

# Audit events refused even outside mechanism code, once armed.
DENIED_EVENTS = frozenset({
    "open", "import", "sys.addaudithook", "sys.settrace", "sys.setprofile", "builtins.input",
    "pickle.find_class", "code.__new__", "function.__new__", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "sys._current_frames",
})
DENIED_PREFIXES = (
    "os.", "socket.", "subprocess.", "ctypes.", "shutil.", "pty.", "mmap.", "urllib.", "http.",
    "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "webbrowser.", "glob.",
    "tempfile.", "sqlite3.", "resource.", "fcntl.", "signal.", "syslog.", "cpython.", "_posixsubprocess",
)
# Audit events allowed while mechanism code runs (everything else is refused then). ``builtins.id``
# comes from numpy's array printing (a recursion guard keyed on ``id(self)``); mechanisms have no ``id``.
MECHANISM_EVENTS: frozenset[str] = frozenset({"builtins.id"})


# --------------------------------------------------------------------------- audit
class _AuditState:
    """What the audit hook needs to know: is mechanism code running, which code may be exec'd."""

    mechanism = False
    exec_code: CodeType | None = None


_AUDIT = _AuditState()


def make_audit_hook(refuse: Callable[..., NoReturn] = policy.refuse,
                    state: _AuditState = _AUDIT) -> Callable[[str, tuple[Any, ...]], None]:
    """The worker's audit hook, with its refusal and its state bound now, when it is armed.

    Rebinding ``policy.refuse`` (or any module global) later changes nothing: the hook holds
    its own references, and mechanism globals reach neither it nor them.
    """
    denied, prefixes, allowed = DENIED_EVENTS, DENIED_PREFIXES, MECHANISM_EVENTS

    def audit_hook(event: str, args: tuple[Any, ...]) -> None:
        if state.mechanism:
            if event == "exec" and args and args[0] is state.exec_code:
                state.exec_code = None
                return
            if event in allowed:
                return
            refuse(f"audit: event {event!r} refused while mechanism code runs", layer="audit")
        if event in denied or event.startswith(prefixes):
            refuse(f"audit: event {event!r} refused in the sandbox worker", layer="audit")

    return audit_hook


class _MechanismMode:
    """The context of :func:`mechanism_mode`: a plain class, as cheap as a ``try``/``finally`` (the worker
    enters it twice per hook call)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _AUDIT.mechanism = True

    def __exit__(self, *exc: object) -> None:
        _AUDIT.mechanism = False


_MECHANISM_MODE = _MechanismMode()


def mechanism_mode() -> _MechanismMode:
    """Mark mechanism code as running (the audit hook is strictest then) for the ``with`` block;
    however the block ends, the mark is removed."""
    return _MECHANISM_MODE


def take_protocol_fds() -> tuple[int, int]:
    """Private copies of stdin/stdout for the protocol; fds 0, 1 and 2 then point at /dev/null."""
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return proto_in, proto_out


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY and os.getuid() != 0:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def set_rlimits(limits: dict[str, Any]) -> None:
    """Address space, CPU seconds, file size, open files and core size of this process."""
    _set_limit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    cpu = int(limits["cpu_s"])
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 5)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    _set_limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    _set_limit(resource.RLIMIT_CORE, 0)


def try_netns() -> bool:
    """Move into a fresh network namespace (only loopback, down) where the machine allows it.

    As root, a plain ``unshare(CLONE_NEWNET)``; otherwise a new user namespace with it, which
    unprivileged users may create on many Linux systems (and which gives no rights outside it).
    """
    flags = CLONE_NEWNET if os.getuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(flags) == 0)
    except Exception:  # noqa: BLE001
        return False


def try_ipcns() -> bool:
    """Move into a fresh IPC namespace (SysV shared memory, semaphores, message queues and POSIX
    message queues of its own, gone when the worker exits) where the machine allows it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(CLONE_NEWIPC) == 0)
    except Exception:  # noqa: BLE001
        return False


def drop_privileges() -> bool:
    """Run as ``nobody`` from here on when started as root; no new processes or threads either."""
    if os.getuid() != 0:
        return False
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except OSError:
        return os.getuid() != 0
    return True


def import_seccomp() -> Any:
    """The ``pyseccomp`` module, or None where it (or ``libseccomp.so.2``) is missing.

    Imported before hardening: pyseccomp finds libseccomp with ``ctypes.util.find_library``,
    which starts ``ldconfig`` in a child process, and that is refused once the worker is hardened.
    """
    try:
        import pyseccomp  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - not installed, or libseccomp.so.2 missing
        return None
    return pyseccomp


#: System calls the seccomp filter refuses outright (EPERM): networking, new programs and processes,
#: signals to others, tracing, changing files and the file tree, namespaces, mounts, limits, kernel
#: interfaces that bypass the filter (io_uring) or reach the kernel's deeper surface.
SECCOMP_DENIED: tuple[str, ...] = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "execve", "execveat", "fork",
    "vfork", "kill", "tkill", "tgkill", "ptrace", "process_vm_readv", "process_vm_writev", "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "setrlimit", "prlimit64", "creat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat",
    "truncate", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "mknod", "mknodat",
    "name_to_handle_at", "open_by_handle_at", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf",
    "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "reboot", "swapon", "swapoff",
    # other processes: no pidfds (signals, stealing fds), no comparing or advising them
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "kcmp", "process_madvise", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    # SysV IPC and POSIX message queues: state that could outlive the worker or reach another one
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
    "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
    "mq_getsetattr",
    # no leaving the host's reach: no new session or group, no clearing the parent-death signal
    "setsid", "setpgid", "prctl",
)


def build_seccomp(sc: Any) -> Any:
    """The seccomp filter, built but not loaded (``sc`` is pyseccomp or None; None if it cannot be built).

    The fork server builds it once; each worker only loads it (:func:`try_seccomp`). A name this
    architecture lacks (``open`` and ``creat`` on aarch64) is skipped.
    """
    if sc is None:
        return None
    try:
        deny = sc.ERRNO(errno.EPERM)
        flt = sc.SyscallFilter(defaction=sc.ALLOW)
    except Exception:  # noqa: BLE001
        return None

    def rule(action: int, name: str, *args: Any) -> None:
        with contextlib.suppress(Exception):  # not a system call on this architecture
            flt.add_rule(action, name, *args)

    for name in SECCOMP_DENIED:
        rule(deny, name)
    rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags in a struct: make libc fall back to clone
    rule(sc.ERRNO(errno.ENOSYS), "openat2")  # flags in a struct: make libc fall back to openat
    for flag in (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC):
        rule(deny, "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
        rule(deny, "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
    return flt


def try_seccomp(sc: Any) -> bool:
    """Load the seccomp filter: no sockets, exec, fork, kill, pidfds, SysV IPC or writable opens.

    ``sc`` is a filter from :func:`build_seccomp`, the pyseccomp module (the filter is built now)
    or None. The layer is active only if the filter loads.
    """
    flt = build_seccomp(sc) if sc is not None and hasattr(sc, "SyscallFilter") else sc
    if flt is None:
        return False
    try:
        flt.load()
    except Exception:  # noqa: BLE001
        return False
    return True


#: The layers :func:`harden` can apply, in order (``policy`` and ``timeout`` are not the worker's own).
OS_LAYERS: tuple[str, ...] = ("netns", "ipcns", "rlimit", "uid", "seccomp", "audit")

def harden(limits: dict[str, Any], only: Collection[str] | None = None, seccomp: Any = None,
           netns: Callable[[], bool] | None = None, parent: int | None = None) -> list[str]:
    """Apply the OS layers in order; return the names of the active layers.

    ``only`` restricts hardening to some of :data:`OS_LAYERS` (the layer tests use it to try
    one layer alone); the worker always applies all. ``seccomp`` is the module from
    :func:`import_seccomp`, imported before this call; ``netns`` replaces :func:`try_netns`;
    ``parent`` is the pid whose death must kill this process (default: the current parent).
    """
    wanted = set(OS_LAYERS if only is None else only)
    layers = ["policy"]
    if "netns" in wanted and (netns or try_netns)():
        layers.append("netns")
    if "ipcns" in wanted and try_ipcns():
        layers.append("ipcns")
    if "rlimit" in wanted:
        set_rlimits(limits)
        layers.append("rlimit")
    if "uid" in wanted and drop_privileges():
        layers.append("uid")
    die_with_parent(parent)  # a uid change clears the parent-death signal: set it again
    if "seccomp" in wanted and try_seccomp(seccomp):
        layers.append("seccomp")
    if "audit" in wanted:
        sys.addaudithook(make_audit_hook())
        layers.append("audit")
    layers.append("timeout")
    return layers

