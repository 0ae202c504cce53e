"""A pre-imported server launcher for crash tests.

Starting ``sealkeeper serve`` costs seconds, almost all of it importing
Python modules. The crash harness kills the server dozens of times, so it
starts servers from this "zygote" instead: a process that imports the server
once, then, for every ``spawn`` command on its standard input, forks a child
that builds the application from the environment (engine, key store, caches:
nothing is shared with the zygote, which never touches the database) and
serves it with uvicorn, exactly as a worker of ``sealkeeper serve`` does. The
child is an ordinary server process: the harness kills it with SIGKILL.

Protocol (one line each): ``spawn <port> <log file>`` answers ``<pid>``;
``reap`` answers ``ok`` after waiting for dead children; ``quit`` exits.
Run it as ``python zygote.py`` with the SEALKEEPER_* environment set.
"""

from __future__ import annotations

import contextlib
import os
import sys


def _serve(port: int, log_file: str) -> None:  # pragma: no cover - runs in the child
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ["SEALKEEPER_PUBLIC_BASE_URL"] = os.environ.get(
        "SEALKEEPER_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    import uvicorn

    uvicorn.run("sealkeeper.web.asgi:app_from_env", factory=True, host="127.0.0.1",
                port=port, workers=1, access_log=False, log_level="warning")
    os._exit(0)


def main() -> None:
    # Import everything the server needs before the first fork: uvicorn's
    # config loads the protocol modules and calls the factory once (that app,
    # and the engine it made without ever connecting, are thrown away).
    import logging

    from uvicorn.config import Config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    Config("sealkeeper.web.asgi:app_from_env", factory=True, workers=1,
           log_level="warning").load()
    print("ready", flush=True)
    while line := sys.stdin.readline():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "spawn":
            port, log_file = int(parts[1]), parts[2]
            pid = os.fork()
            if pid == 0:
                try:
                    _serve(port, log_file)
                finally:
                    os._exit(1)
            print(pid, flush=True)
        elif parts[0] == "reap":
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            print("ok", flush=True)
        elif parts[0] == "quit":
            break


if __name__ == "__main__":
    main()
