"""A service started by another Orbit process stops when that process is gone.

The demo, the tests and the benchmarks start the emulator, the bridge and endpoints
as processes of their own session (so that a Ctrl-C in the terminal reaches only the
parent, which stops them in order). Killed with SIGKILL, the parent could stop
nothing, and its services went on holding their ports. Now the parent keeps the
write end of a pipe, the service inherits the read end and names it in
``RADICAL_ORBIT_LIFELINE_FD``: when every copy of the write end is closed (the parent
exited, however it died), the read end sees end-of-file and the service sends itself
SIGTERM, its usual graceful stop. The pipe works the same on Linux and macOS, and
unlike Linux's parent-death signal it follows the process, not the thread that
started the child.

Parent side: :func:`lifeline` before ``Popen``; child side: :func:`watch_parent`,
called once by the CLI. Nothing else is ever read from or written to the pipe.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
from collections.abc import Callable, MutableMapping

log = logging.getLogger(__name__)

#: the environment variable that names the inherited read end (a file descriptor number)
ENV_LIFELINE = "RADICAL_ORBIT_LIFELINE_FD"


def lifeline(env: MutableMapping[str, str]) -> tuple[int, int]:
    """A pipe for one child: ``(read_end, write_end)``, with ``env`` naming the read end.

    Pass ``read_end`` in ``pass_fds`` and close it once the child is started; keep
    ``write_end`` open as long as the child should live (close it to stop the child).
    Both ends are created non-inheritable, so no other child gets a copy.
    """
    read_end, write_end = os.pipe()
    env[ENV_LIFELINE] = str(read_end)
    return read_end, write_end


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(
    environ: MutableMapping[str, str] | None = None, *, on_gone: Callable[[], None] = _terminate_self
) -> threading.Thread | None:
    """Watch the lifeline named in the environment, if any; ``on_gone()`` once the parent is gone.

    The variable is removed from the environment first, so that a process this one
    starts does not take some other file of its own for the lifeline. A value that
    is not an open pipe is ignored with a warning (the service then runs unwatched).
    """
    env = os.environ if environ is None else environ
    raw = env.pop(ENV_LIFELINE, None)
    if raw is None:
        return None
    try:
        fd = int(raw)
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (ValueError, OSError):
        is_pipe = False
    if not is_pipe:
        log.warning("%s=%r is not an open pipe: this process will not stop with the one that started it", ENV_LIFELINE, raw)
        return None
    os.set_inheritable(fd, False)
    watcher = threading.Thread(target=_wait_for_eof, args=(fd, on_gone), name="orbit-lifeline", daemon=True)
    watcher.start()
    return watcher


def _wait_for_eof(fd: int, on_gone: Callable[[], None]) -> None:
    try:
        while os.read(fd, 512):  # nobody writes: the first read returns at end-of-file
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    log.warning("the process that started this one is gone: stopping")
    on_gone()
