"""kiln's warm start for Python command trials (src/objective/command/warm.rs starts it).

One server per worker process. It imports the script's modules once (its top-level imports that
live outside the script's own folder, or `[objective] preload`), then forks a fresh child for
each trial, which runs the script as `__main__` with the trial's arguments, environment, working
folder and standard streams, exactly as `python3 script.py ...` would. The first trial to end of
its own accord leaves the names of the modules it imported later (a library's lazy imports) in
an unnamed file the server holds; the server imports those too, so later trials find them loaded.

The socket at fd KILN_WARM_FD talks to the worker:
- worker -> server: a frame (a 4-byte big-endian length, then JSON) carrying three descriptors,
  the trial's stdout, stderr and report pipes: {"env": {...}, "cwd": "...", "args": [...]}, env
  being the trial's variables, set over the worker's environment that the server inherited;
- server -> worker: JSON lines, {"ready": [...imported, less the standard library's], "failed":
  [...]} once, then per trial
  {"pid": N} once it is forked and {"exit": N, "status": S} (the raw wait status) once it ended.

Invariants: the server never touches a GPU or starts a thread (neither survives a fork); it dies
with its worker (parent-death signal), and each child dies with the server, so no trial outlives
kiln; a child shares nothing with its siblings but what was imported before the fork.
"""

import ast
import ctypes
import fcntl
import gc
import importlib.util
import io
import json
import os
import runpy
import signal
import socket
import struct
import sys
import tempfile

PR_SET_PDEATHSIG = 1
CONFIG = json.loads(sys.argv[1])  # {"script": path} or {"module": name}, and "preload"


def die_with_parent(parent):
    """SIGKILL this process when `parent` dies; exit now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def target_path():
    """The file the trial runs: the script, or the module's source."""
    if "script" in CONFIG:
        return os.path.abspath(CONFIG["script"])
    try:
        spec = importlib.util.find_spec(CONFIG["module"])
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def top_level_imports(path):
    """The absolute imports of the file's top level (inside if/try/with too, not in functions)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return []
    names = []

    def visit(statements):
        for s in statements:
            if isinstance(s, ast.Import):
                names.extend(a.name for a in s.names)
            elif isinstance(s, ast.ImportFrom) and s.level == 0 and s.module:
                names.append(s.module)
            elif isinstance(s, (ast.If, ast.Try, ast.With)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(s, block, []))
                for handler in getattr(s, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return [n for n in dict.fromkeys(names) if n != "__future__"]


def is_users_own(name, folders):
    """Whether the module is a file of the user's project, which may change between trials."""
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return True
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return spec is None
    origin = os.path.realpath(spec.origin)
    return any(origin.startswith(os.path.join(f, "")) for f in folders)


def own_folders():
    """The folders of the user's own modules: the working folder and the script's."""
    folders = [os.path.realpath(os.getcwd())]
    path = target_path()
    if "script" in CONFIG and path:
        folders.append(os.path.realpath(os.path.dirname(path)))
    return folders


def preload():
    """Imports the modules to share; returns (imported, failed)."""
    path = target_path()
    folders = own_folders()
    names = CONFIG.get("preload")
    if names is None:
        names = [n for n in top_level_imports(path) if not is_users_own(n, folders)] if path else []
    imported, failed = [], []
    stdlib = getattr(sys, "stdlib_module_names", ())
    for name in names:
        try:
            __import__(name)
        except BaseException:  # the script meets the same error itself, in its own trial
            failed.append(name)
            continue
        if name.split(".")[0] not in stdlib:  # said: what saves time
            imported.append(name)
    return imported, failed


def leave_modules(learned, before):
    """Writes the modules this child imported beyond the server's to the descriptor `learned`
    (best effort)."""
    try:
        names = [n for n in sys.modules if n not in before and n != "__main__"]
        with open(learned, "w", closefd=False) as f:
            json.dump(names, f)
    except BaseException:
        pass


def learn(learned, folders):
    """Imports what the first trial imported later than its start (torch's optimizers import
    some 900 modules on first use): every later trial finds them imported. The user's own
    modules stay out, as in preload. False when the trial left nothing (it was stopped first)."""
    try:
        with open(learned, closefd=False) as f:
            f.seek(0)
            names = json.loads(f.read())
    except (OSError, ValueError):
        names = None
    os.ftruncate(learned, 0)
    os.lseek(learned, 0, os.SEEK_SET)
    if not isinstance(names, list):
        return False
    for name in names:
        if name in sys.modules or is_users_own(name, folders):
            continue
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    return True


def receive(sock):
    """The next request and its descriptors, or None when the worker has gone."""
    header, fds, _, _ = socket.recv_fds(sock, 4, 3)
    if not header:
        return None
    while len(header) < 4:
        more = sock.recv(4 - len(header))
        if not more:
            return None
        header += more
    (length,) = struct.unpack(">I", header)
    body = b""
    while len(body) < length:
        more = sock.recv(length - len(body))
        if not more:
            return None
        body += more
    return json.loads(body), fds


def send(sock, message):
    sock.sendall((json.dumps(message) + "\n").encode())


def stdio(fd, mode, unbuffered, like, line_buffering):
    """A standard stream on `fd` as Python's start-up makes it (PYTHONUNBUFFERED and -u honoured)."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffer = raw if unbuffered and mode == "w" else (io.BufferedWriter(raw) if mode == "w" else io.BufferedReader(raw))
    return io.TextIOWrapper(
        buffer,
        encoding=like.encoding,
        errors=like.errors,
        line_buffering=line_buffering,
        write_through=unbuffered and mode == "w",
    )


def exit_code(stop):
    """The exit status of a SystemExit, as the interpreter computes it."""
    code = stop.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def finish(code, learned, before):
    """Ends the child the way the interpreter ends: threads joined, atexit, streams flushed."""
    import threading

    if before is not None:
        leave_modules(learned, before)
    try:
        threading._shutdown()
    except BaseException:
        pass
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 120
    os._exit(code)


def prepare_child(request, fds, sock, server):
    """Turns the forked child into the trial's process: group, signals, streams, environment."""
    os.setpgid(0, 0)
    die_with_parent(server)
    sock.close()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
    for fd in fds:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for target, fd in zip((1, 2, 3), high):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.update(request["env"])  # the trial's variables over the worker's
    os.chdir(request["cwd"])
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED")) or CONFIG.get("unbuffered", False)
    sys.stdin = sys.__stdin__ = stdio(0, "r", False, sys.__stdin__ or sys.stdin, False)
    sys.stdout = sys.__stdout__ = stdio(1, "w", unbuffered, sys.__stdout__, False)
    sys.stderr = sys.__stderr__ = stdio(2, "w", unbuffered, sys.__stderr__, True)
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # its global generator is the server's: seed it afresh, as at start
        numpy.random.seed()


def run_trial(request):
    """Runs the script or module as __main__ with the trial's arguments."""
    args = request["args"]
    if "script" in CONFIG:
        script = CONFIG["script"]
        sys.argv = [script] + args
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")
    else:
        sys.argv = [CONFIG["module"]] + args
        sys.path[0] = os.getcwd()
        runpy.run_module(CONFIG["module"], run_name="__main__", alter_sys=True)


def child(request, fds, sock, server, learned):
    """The trial's process: never returns. With `learned`, it leaves there the modules it
    imported."""
    code = 1
    before = set(sys.modules) if learned is not None else None
    try:
        prepare_child(request, fds, sock, server)
        run_trial(request)
        code = 0
    except SystemExit as stop:
        code = exit_code(stop)
    except KeyboardInterrupt:
        # As the interpreter does: die by SIGINT, so the exit says how it ended.
        sys.stderr.write("KeyboardInterrupt\n")
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    finish(code, learned, before)


def main():
    server = os.getpid()
    parent = int(os.environ.pop("KILN_WARM_PARENT"))
    os.setpgid(0, 0)
    die_with_parent(parent)
    sock = socket.socket(fileno=int(os.environ.pop("KILN_WARM_FD")))
    if "script" in CONFIG:
        sys.path[0] = os.path.dirname(os.path.abspath(CONFIG["script"]))
    imported, failed = preload()
    gc.freeze()  # the children share the imported modules' pages instead of copying them
    send(sock, {"ready": imported, "failed": failed})
    with tempfile.TemporaryFile() as unnamed:  # nothing is left behind, whatever ends the server
        # Above the descriptors a child sets up (0 to 3), out of the script's way.
        learned = fcntl.fcntl(unnamed.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    serve(sock, server, learned)


def serve(sock, server, learned):
    """Forks a child per request until the worker goes; learns from the first that says."""
    while True:
        received = receive(sock)
        if received is None:
            return
        request, fds = received
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(request, fds, sock, server, learned)
        for fd in fds:
            os.close(fd)
        send(sock, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        send(sock, {"exit": pid, "status": status})
        if learned is not None and learn(learned, own_folders()):  # while the worker reports
            os.close(learned)
            learned = None
            gc.freeze()


try:
    main()
except (BrokenPipeError, ConnectionResetError):
    pass
