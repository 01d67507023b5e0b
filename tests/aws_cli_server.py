"""The real AWS CLI, started once: a server that imports it and forks a child per `aws` call.

The bash scripts call `aws` some 40 times a run, and each call of the CLI (v1, from PyPI) is a
Python start that imports botocore and the CLI's plugins: about 0.5 s of CPU each, most of what
the scripts' tests cost. Here one process imports the CLI once; the `aws` on the tests' PATH is a
small stdlib-only client that hands the server its argument list, environment, working folder
and its stdin, stdout and stderr (over a Unix socket), and exits with the call's exit code. The
server forks, the child takes those as its own and runs the CLI's own `main()`: the same code,
reading the same environment, as `aws` would.

    python tests/aws_cli_server.py SOCKET   # serves until killed
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# The client, run for every `aws` call: `-S -E` keep its own start to the standard library, and it
# imports `os` and `_socket` only (`_socket` is the C half of `socket`; json and socket would
# double its cost). Its request: NUL-separated fields (no field holds a NUL).
CLIENT = """#!{python} -SE
import _socket, os, sys
fields = [os.getcwd(), str(len(sys.argv) - 1), *sys.argv[1:], *(f"{{k}}={{v}}" for k, v in os.environ.items())]
request = b"\\0".join(map(os.fsencode, fields))
fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))  # three C ints
server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
server.connect({socket_path!r})
server.sendmsg([len(request).to_bytes(4, "big") + request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
answer = b""
while len(answer) < 4 and (part := server.recv(4 - len(answer))):
    answer += part
sys.exit(int.from_bytes(answer, "big", signed=True) if len(answer) == 4 else 255)
"""


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    """One client's request and its three descriptors. A client that died before its request was
    whole (a recv of nothing) raises ConnectionError, with the descriptors it sent closed."""
    data, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    try:
        if len(data) < 4 or len(fds) != 3:
            raise ConnectionError("the client left before its request")
        size = int.from_bytes(data[:4], "big")
        data = data[4:]
        while len(data) < size:
            if not (part := connection.recv(size - len(data))):
                raise ConnectionError("the client left in the middle of its request")
            data += part
        cwd, count, *rest = map(os.fsdecode, data.split(b"\0"))
        argv, env = rest[:int(count)], rest[int(count):]
        return {"cwd": cwd, "argv": argv, "env": dict(item.split("=", 1) for item in env)}, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _run_call(connection: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the caller's `aws` process, run the CLI, answer its exit code."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # What importing awscli and its `aws` script do to the environment, done again for the caller's.
    import awscli
    from awscli.clidriver import main

    own_data = [os.path.expanduser(os.path.expandvars(p)) for p in os.environ.get("AWS_DATA_PATH", "").split(os.pathsep) if p]
    os.environ["AWS_DATA_PATH"] = os.pathsep.join([*own_data, str(Path(awscli.__file__).parent / "data")])
    if os.environ.get("LC_CTYPE", "") == "UTF-8":
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    sys.argv = ["aws", *request["argv"]]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    try:
        code = main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    connection.sendall((code or 0).to_bytes(4, "big", signed=True))
    os._exit(code or 0)


# The services the scripts call: their models are read once, by the server.
SERVICES = ("athena", "glue", "iam", "lambda", "logs", "s3", "sqs", "sts")


def _load_data_once() -> None:
    """Every botocore Loader of the server and of its children shares one cache of what it read
    (per search path), and the scripts' service models, endpoints and rules are read into it now:
    a child finds them parsed, as a CLI would after reading the same files. A child's changes to
    its copy stay in the child (fork)."""
    import awscli.clidriver
    from botocore import loaders
    from botocore.exceptions import DataNotFoundError

    shared: dict[tuple[str, ...], dict] = {}
    real_init = loaders.Loader.__init__

    def init(self: loaders.Loader, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        self._cache = shared.setdefault(tuple(self.search_paths), {})

    loaders.Loader.__init__ = init  # type: ignore[method-assign]
    _keep_handler_checks()
    driver = awscli.clidriver.create_clidriver()  # imports every plugin the CLI loads, once
    driver._get_command_table()  # pyright: ignore[reportPrivateUsage]
    for service in SERVICES:
        driver.session.create_client(service, region_name="us-east-1", aws_access_key_id="x",
                                     aws_secret_access_key="x")
        # Every call's command table reads the service's waiters and paginators (and lists them first).
        for read in (driver.session.get_waiter_model, driver.session.get_paginator_model):
            with contextlib.suppress(DataNotFoundError):  # a service without waiters
                read(service)


def _keep_handler_checks() -> None:
    """A call's CLI registers some 3,800 event handlers, and botocore checks each: whether it takes
    **kwargs (inspect's signature of the function) and the event name's aliased form (string work
    on the name, with botocore's fixed aliases). Both answers depend on their argument alone: the
    server's are kept for its children, which register the same handlers for the same names."""
    from botocore import hooks

    real_accepts_kwargs, answers = hooks.accepts_kwargs, {}

    def accepts_kwargs(func: object) -> bool:
        try:
            return answers[func]
        except KeyError:
            answer = answers[func] = real_accepts_kwargs(func)
            return answer
        except TypeError:  # not hashable: asked each time
            return real_accepts_kwargs(func)

    hooks.accepts_kwargs = accepts_kwargs  # type: ignore[assignment]
    aliased: dict[str, str] = {}
    real_aliaser_init = hooks.EventAliaser.__init__

    def aliaser_init(self: hooks.EventAliaser, event_emitter: object, event_aliases: object = None) -> None:
        real_aliaser_init(self, event_emitter, event_aliases)  # type: ignore[arg-type]
        if event_aliases is None:  # botocore's own aliases: a name aliases the same in every call
            self._alias_name_cache = aliased  # pyright: ignore[reportAttributeAccessIssue]

    hooks.EventAliaser.__init__ = aliaser_init  # type: ignore[method-assign]


def serve(socket_path: str) -> None:
    _load_data_once()
    # A child's collections would walk (and so copy, page by page) every object the server holds:
    # a call whose child collects took 0.25 CPU-s, 0.08 frozen (the collector leaves them alone).
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(f"{socket_path}.new")
        listener.listen(16)
        os.replace(f"{socket_path}.new", socket_path)  # visible once it listens
        while True:
            connection, _ = listener.accept()
            try:
                request, fds = _receive(connection)
            except ConnectionError:  # that call's client is gone; the server serves the next
                connection.close()
                continue
            if os.fork() == 0:
                listener.close()
                _run_call(connection, request, fds)
            connection.close()
            for fd in fds:
                os.close(fd)


@contextlib.contextmanager
def aws_cli_folder(folder: Path) -> Iterator[Path]:
    """`folder` holding an `aws` served by a CLI server started here (put it first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / "cli.sock"
    socket_path.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, __file__, str(socket_path)], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not socket_path.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the AWS CLI server did not start (exit {server.poll()})")
            time.sleep(0.05)
        client = folder / "aws"
        client.write_text(CLIENT.format(python=sys.executable, socket_path=str(socket_path)))
        client.chmod(0o755)
        yield folder
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    serve(sys.argv[1])
