"""Twisted's own tools with ``compat_plugin.twisted`` installed, run as real processes.

The ``acme_twisted`` project declares three plugins in the ``twisted.plugins`` entry-point group
and installs nothing in a ``twisted/plugins`` directory, so only a lookup that reads entry points
finds them: a service maker (``compatecho``: a line echo server), an endpoint string parser
(``compattcp:port=N``) and a trial reporter (``compatreporter``).  It is built and installed
once with pip (``--target``); every child interpreter gets that directory on ``PYTHONPATH``.
The same commands run without the wrapper -- the way their console scripts run them -- show
that Twisted alone does not see these plugins.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from compat_plugin import twisted as compat_twisted
from compat_plugin.testing import install_wheels

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("twisted") is None, reason="Twisted is not installed"
)

PROJECT = Path(__file__).parent / "projects" / "acme_twisted"
WRAPPER = (sys.executable, "-m", "compat_plugin.twisted")
# Runs a Twisted command as its console script does, without compat_plugin:
# ``python -c PLAIN NAME ARGS...``.
PLAIN = (
    sys.executable,
    "-c",
    textwrap.dedent("""
        import sys
        from importlib.metadata import distribution

        name = sys.argv[1]
        (script,) = [e for e in distribution("twisted").entry_points
                     if e.group == "console_scripts" and e.name == name]
        sys.argv[:] = sys.argv[1:]
        sys.exit(script.load()())
    """),
)
TIMEOUT = 120

# What the fixture's plugins print or log (see tests/projects/acme_twisted).
GREETING = b"compatecho ready"
STARTED = "acme-twisted echo service started"
STOPPED = "acme-twisted echo service stopped"
REPORTER_MARKER = "ACME-TWISTED-REPORTER"
SERVICE_DESCRIPTION = "A line echo server on 127.0.0.1 that greets each client."


# -- Helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project, built into a wheel and installed by pip into a directory of its own."""
    source = tmp_path_factory.mktemp("acme_twisted_source") / "acme_twisted"
    # Built from a copy: setuptools writes build/ and *.egg-info/ into the project.
    shutil.copytree(PROJECT, source)
    target = install_wheels(tmp_path_factory.mktemp("acme_twisted_site"), source)
    assert (target / "acme_twisted" / "plugins.py").is_file()
    assert not (target / "twisted").exists()
    return target


def environment(site: Path) -> dict[str, str]:
    """This process's environment with ``site`` in front of ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run(
    command: tuple[str, ...], *args: str, site: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], env=environment(site), cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT,
    )


def child_report(code: str, *, site: Path, cwd: Path, **values: object) -> Any:
    """Run ``code`` (after one ``NAME = repr(value)`` line per keyword) in a fresh interpreter;
    return the JSON it prints on its last line."""
    assignments = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    result = run((sys.executable, "-c", assignments + textwrap.dedent(code)), site=site, cwd=cwd)
    if result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        raise AssertionError(f"child failed ({result.returncode}):\n{output}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def assert_no_traceback(output: str) -> None:
    assert "Traceback" not in output, output
    assert "Unhandled" not in output, output


class Server:
    """A command running in the background, its output going to a file."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def connect(self, port: int) -> socket.socket:
        """A connection to ``port`` on 127.0.0.1, once the command accepts one."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"exited with {self.process.returncode} before listening:\n{self.output()}"
                )
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"never listened on {port}:\n{self.output()}") from None
                time.sleep(0.1)

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"did not stop:\n{self.output()}") from None


def _interruptible() -> None:
    """Let the server be stopped by SIGINT even when this test run ignores it (as a
    background job of a non-interactive shell does): an ignored signal stays ignored in a
    child, and Twisted then installs no handler for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def serving(args: list[str], site: Path, cwd: Path) -> Iterator[Server]:
    """Run ``args``; kill the process if it is still running when the block ends."""
    log = cwd / "output.log"
    with log.open("wb") as stream:
        process = subprocess.Popen(
            args, env=environment(site), cwd=cwd, stdin=subprocess.DEVNULL, stdout=stream,
            stderr=subprocess.STDOUT, preexec_fn=_interruptible,
        )
    try:
        yield Server(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)


class LineClient:
    """A line-oriented client connection with a timeout on every read."""

    def __init__(self, connection: socket.socket) -> None:
        connection.settimeout(30)
        self.connection = connection
        self.reader = connection.makefile("rb")

    def line(self) -> bytes:
        return self.reader.readline().rstrip(b"\r\n")

    def send(self, line: bytes) -> None:
        self.connection.sendall(line + b"\n")

    def close(self) -> None:
        self.reader.close()
        self.connection.close()


# -- The module itself ----------------------------------------------------------------------------


IMPORTS_ONLY = """
import json
import sys

import compat_plugin
import compat_plugin.twisted

print(json.dumps(sorted(m for m in sys.modules if m == "twisted" or m.startswith("twisted."))))
"""


def test_importing_compat_plugin_and_its_twisted_module_does_not_import_twisted(
    site: Path, tmp_path: Path
) -> None:
    assert child_report(IMPORTS_ONLY, site=site, cwd=tmp_path) == []


def _binding_names(
    body: list[ast.stmt], module: str, scope: str, package: str, found: set[str]
) -> None:
    """Add to ``found`` the names that ``body`` (run at import time) binds to Twisted's lookup
    function: imported from ``twisted.plugin``, assigned from an expression naming it, or
    defined.  Class bodies are followed; function bodies run later and are not."""
    lookups = {"getPlugins", "getPlugIns"}
    for statement in body:
        if isinstance(statement, ast.ImportFrom):
            source = statement.module or ""
            if statement.level:
                base = package.split(".")[: len(package.split(".")) - statement.level + 1]
                source = ".".join([*base, *filter(None, [source])])
            if source == "twisted.plugin":
                for alias in statement.names:
                    if alias.name in lookups:
                        found.add(f"{module}.{scope}{alias.asname or alias.name}")
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            named = any(
                (isinstance(node, ast.Name) and node.id in lookups)
                or (isinstance(node, ast.Attribute) and node.attr in lookups)
                for node in ast.walk(statement.value)
            )
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if named:
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.add(f"{module}.{scope}{target.id}")
        elif isinstance(statement, ast.FunctionDef) and statement.name in lookups:
            found.add(f"{module}.{scope}{statement.name}")
        elif isinstance(statement, ast.ClassDef):
            _binding_names(statement.body, module, f"{scope}{statement.name}.", package, found)
        elif isinstance(statement, (ast.If, ast.Try)):
            blocks = [statement.body, statement.orelse]
            if isinstance(statement, ast.Try):
                blocks += [statement.finalbody, *(h.body for h in statement.handlers)]
            for block in blocks:
                _binding_names(block, module, scope, package, found)


def twisted_lookup_bindings() -> set[str]:
    """Every place in the installed Twisted (tests left out) that holds Twisted's lookup
    function since import time, as dotted names."""
    spec = importlib.util.find_spec("twisted")
    assert spec is not None and spec.origin is not None
    root = Path(spec.origin).parent
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if {"test", "tests"} & set(parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "getPlugins" not in text and "getPlugIns" not in text:
            continue
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        package = module if is_package else module.rpartition(".")[0]
        _binding_names(ast.parse(text).body, module, "", package, found)
    return found


def test_every_place_twisted_binds_its_lookup_at_import_time_is_patched() -> None:
    """Twisted's sources, read: a module holding the function since import time would keep
    using it whatever ``twisted.plugin`` holds later; each such place must be a patched one."""
    found = twisted_lookup_bindings()
    assert "twisted.internet.endpoints.getPlugins" in found  # the scan does see them
    assert found <= set(compat_twisted.PLACES), found - set(compat_twisted.PLACES)


IDENTITY = """
import importlib
import json
import sys

import compat_plugin
import compat_plugin.twisted as compat_twisted

# Imported here or not, a module must end up patched either way.
import twisted.internet.endpoints
import twisted.plugin
from twisted.application.reactors import getReactorTypes

twisteds = twisted.plugin.getPlugins
places = dict()
for module_name, path in PLACES:
    if PREIMPORT:
        importlib.import_module(module_name)
    places[module_name + "." + path] = (module_name, path)


def owner_and_name(place, load=True):
    module_name, path = places[place]
    module = importlib.import_module(module_name) if load else sys.modules.get(module_name)
    if module is None:
        return None, None
    owner = module
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, name


def raw(place, load=True):
    owner, name = owner_and_name(place, load)
    return None if owner is None else vars(owner).get(name)


def value(place):
    owner, name = owner_and_name(place)
    return getattr(owner, name)


def reactor_names():
    return sorted(r.shortName for r in getReactorTypes())


def checker_names():
    from twisted.cred import strcred

    return sorted(f.authType for f in strcred.findCheckerFactories())


before = dict((place, raw(place, load=False)) for place in places)
report = dict(imported_before=sorted(p for p in places if before[p] is not None))
plain_reactors = reactor_names()
report["installed"] = compat_twisted.install()
report["ours"] = dict((p, value(p) is compat_plugin.getPlugins) for p in places)
report["kinds"] = dict((p, type(raw(p)).__name__) for p in places)
report["patched"] = compat_twisted.patched()
report["again"] = compat_twisted.install()
report["ours_again"] = dict((p, value(p) is compat_plugin.getPlugins) for p in places)
report["same_reactors"] = reactor_names() == plain_reactors
report["checkers"] = checker_names()
compat_twisted.uninstall()
compat_twisted.uninstall()
report["patched_after"] = compat_twisted.patched()
report["twisteds"] = dict((p, value(p) is twisteds) for p in places)
report["kinds_after"] = dict((p, type(raw(p)).__name__) for p in places)
report["identical"] = dict(
    (p, raw(p) is before[p]) for p in places if before[p] is not None
)
report["same_checkers"] = checker_names() == report["checkers"]
print(json.dumps(report))
"""

# (module, attribute path within it) of every place the installed Twisted looks plugins up from.
EXPECTED = (
    ("twisted.plugin", "getPlugins"),
    ("twisted.plugin", "getPlugIns"),
    ("twisted.application.app", "ServerOptions._getPlugins"),
    ("twisted.application.twist._options", "getPlugins"),
    ("twisted.application.reactors", "getPlugins"),
    ("twisted.internet.endpoints", "getPlugins"),
    ("twisted.cred.strcred", "getPlugins"),
)
EXPECTED_PLACES = tuple(f"{module}.{path}" for module, path in EXPECTED)


@pytest.fixture(scope="module")
def identity_reports(site: Path, tmp_path_factory: pytest.TempPathFactory,
                     fresh_twisted_cache: None) -> dict[str, Any]:
    """One report with every module imported before ``install()``, one with only some."""
    cwd = tmp_path_factory.mktemp("identity")
    return {
        mode: child_report(IDENTITY, site=site, cwd=cwd, PLACES=EXPECTED, PREIMPORT=preimport)
        for mode, preimport in [("preimported", True), ("imported-by-install", False)]
    }


def test_the_places_are_those_of_the_installed_twisted(identity_reports: dict[str, Any]) -> None:
    assert compat_twisted.PLACES == EXPECTED_PLACES
    for mode, report in identity_reports.items():
        assert tuple(report["installed"]) == EXPECTED_PLACES, mode
        assert tuple(report["patched"]) == EXPECTED_PLACES, mode
        # Installing again changes nothing.
        assert tuple(report["again"]) == EXPECTED_PLACES, mode
        assert report["patched_after"] == [], mode
    assert identity_reports["preimported"]["imported_before"] == sorted(EXPECTED_PLACES)
    # Only twisted.plugin and twisted.internet.endpoints (and what they import) were there.
    assert "twisted.application.app.ServerOptions._getPlugins" not in (
        identity_reports["imported-by-install"]["imported_before"]
    )


@pytest.mark.parametrize("mode", ["preimported", "imported-by-install"])
@pytest.mark.parametrize("place", EXPECTED_PLACES)
def test_place_is_ours_once_installed_and_twisteds_again_after_uninstall(
    identity_reports: dict[str, Any], place: str, mode: str
) -> None:
    report = identity_reports[mode]
    assert report["ours"][place] is True
    assert report["ours_again"][place] is True
    assert report["twisteds"][place] is True
    # The class attribute stays a static method throughout; module attributes stay functions.
    expected_kind = "staticmethod" if place.endswith("._getPlugins") else "function"
    assert report["kinds"][place] == report["kinds_after"][place] == expected_kind
    if place in report["identical"]:
        assert report["identical"][place] is True


def test_reactor_and_checker_lookups_find_the_same_with_our_lookup(
    identity_reports: dict[str, Any],
) -> None:
    for report in identity_reports.values():
        assert report["same_reactors"] is True
        assert report["same_checkers"] is True
        assert {"memory", "anonymous", "file"} <= set(report["checkers"])


# -- The runner ---------------------------------------------------------------------------------


def test_unknown_command_is_one_line_and_status_2(site: Path, tmp_path: Path) -> None:
    result = run(WRAPPER, "frobnicate", "--help", site=site, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "unknown command 'frobnicate'" in line
    assert "twistd" in line

    result = run(WRAPPER, site=site, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("usage:")


@pytest.mark.parametrize("ask", [["--help"], ["-h"], ["run", "--help"], ["run", "-h"]])
def test_help_is_the_usage_and_status_0(site: Path, tmp_path: Path, ask: list[str]) -> None:
    result = run(WRAPPER, *ask, site=site, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: ")
    assert "entry-point plugins" in result.stdout


@pytest.mark.parametrize("command", ["twistd", "twist"])
def test_help_lists_the_entry_point_service_only_with_the_wrapper(
    site: Path, tmp_path: Path, command: str
) -> None:
    wrapped = run(WRAPPER, command, "--help", site=site, cwd=tmp_path)
    assert wrapped.returncode == 0, wrapped.stderr
    assert "compatecho" in wrapped.stdout
    assert SERVICE_DESCRIPTION.split(" that")[0] in wrapped.stdout
    assert "web " in wrapped.stdout  # Twisted's own plugins are still there

    plain = run(PLAIN, command, "--help", site=site, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "web " in plain.stdout
    assert "compatecho" not in plain.stdout


# A tap plugin in a directory that extends twisted.plugins: its options have no long
# description, so Twisted's usage falls back to ``__main__.__doc__``.
DIRECTORY_TAP = '''
from zope.interface import implementer
from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage


class Options(usage.Options):
    optParameters = [["port", "p", "8080", "The port to listen on."]]


@implementer(IServiceMaker, IPlugin)
class Maker:
    tapname = "dirtap"
    description = "A service made by a tap plugin in a plugin directory."
    options = Options

    def makeService(self, options):
        raise NotImplementedError


maker = Maker()
'''


def test_the_runner_s_help_for_a_directory_plugin_is_plain_twistd_s(tmp_path: Path) -> None:
    plugins = tmp_path / "taps" / "twisted" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "dirtap.py").write_text(DIRECTORY_TAP, encoding="utf-8")
    wrapped = run(WRAPPER, "twistd", "dirtap", "--help", site=tmp_path / "taps", cwd=tmp_path)
    plain = run(PLAIN, "twistd", "dirtap", "--help", site=tmp_path / "taps", cwd=tmp_path)
    assert (wrapped.returncode, plain.returncode) == (0, 0), wrapped.stderr + plain.stderr
    assert "--port=" in plain.stdout
    assert wrapped.stdout == plain.stdout
    assert "compat_plugin" not in wrapped.stdout


def test_python_m_twisted_does_not_see_the_entry_point_service(site: Path, tmp_path: Path) -> None:
    plain = run((sys.executable, "-m", "twisted"), "--help", site=site, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "web " in plain.stdout
    assert "compatecho" not in plain.stdout


def serve_command(command: str, port: int, cwd: Path) -> list[str]:
    """``command`` running the fixture's service on ``port``: twistd listens through its own
    ``tcp:`` endpoint (``--port``), twist through the fixture's ``compattcp:`` endpoint."""
    if command == "twistd":
        return [*WRAPPER, "twistd", "--nodaemon", "--pidfile", str(cwd / "twistd.pid"),
                "compatecho", "--port", str(port)]
    return [*WRAPPER, "twist", "--log-format", "text", "compatecho",
            "--endpoint", f"compattcp:port={port}"]


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "client"])
@pytest.mark.parametrize("command", ["twistd", "twist"])
def test_entry_point_service_serves_and_stops_cleanly(
    site: Path, tmp_path: Path, command: str, stop: str
) -> None:
    if stop != "client" and sys.platform == "win32":
        pytest.skip("POSIX signals")
    port = free_port()
    with serving(serve_command(command, port, tmp_path), site, tmp_path) as server:
        client = LineClient(server.connect(port))
        try:
            assert client.line() == GREETING
            client.send(b"ping")
            assert client.line() == b"ping"
            if stop == "client":
                client.send(b"stop")
            else:
                server.process.send_signal(getattr(signal, stop))
            status = server.wait()
        finally:
            client.close()
    output = server.output()
    # After an orderly shutdown, Twisted ends the process with the signal that stopped it
    # (as twistd and twist always do); stopped from within, it exits with status 0.
    expected = 0 if stop == "client" else -getattr(signal, stop)
    assert status == expected, output
    assert_no_traceback(output)
    assert STARTED in output
    assert STOPPED in output
    assert "Main loop terminated." in output
    if stop != "client":
        assert f"Received {stop}, shutting down." in output


# -- Endpoint strings ---------------------------------------------------------------------------


ENDPOINT = """
import json

if INSTALL:
    import compat_plugin.twisted
    compat_plugin.twisted.install()

from twisted.internet import defer, endpoints, protocol, task

report = dict()


class Hello(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"hello over compattcp")
        self.transport.loseConnection()


class Collect(protocol.Protocol):
    def __init__(self):
        self.received = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.closed.callback(self.received)


def parse(reactor):
    try:
        return endpoints.serverFromString(reactor, "compattcp:port=" + str(PORT))
    except ValueError as exc:
        report.setdefault("errors", []).append(str(exc))
        return None


async def exchange(reactor):
    endpoint = parse(reactor)
    if endpoint is None:
        return
    report["endpoint"] = type(endpoint).__name__
    listening = await endpoint.listen(protocol.Factory.forProtocol(Hello))
    address = listening.getHost()
    report["address"] = [address.host, address.port]
    client = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", PORT, timeout=30)
    collect = Collect()
    await endpoints.connectProtocol(client, collect)
    report["received"] = (await collect.closed).decode()
    await listening.stopListening()
    if INSTALL:
        compat_plugin.twisted.uninstall()
        parse(reactor)


def main(reactor):
    reactor.callLater(60, reactor.stop)
    return defer.ensureDeferred(exchange(reactor))


try:
    task.react(main)
finally:
    print(json.dumps(report))
"""


def test_endpoint_string_of_an_entry_point_parser_works_once_installed(
    site: Path, tmp_path: Path
) -> None:
    port = free_port()
    report = child_report(ENDPOINT, site=site, cwd=tmp_path, INSTALL=True, PORT=port)
    assert report["endpoint"] == "TCP4ServerEndpoint"
    assert report["address"] == ["127.0.0.1", port]
    assert report["received"] == "hello over compattcp"
    # Uninstalled again, Twisted's own lookup no longer knows the prefix.
    assert report["errors"] == ["Unknown endpoint type: 'compattcp'"]


def test_endpoint_string_of_an_entry_point_parser_is_unknown_to_twisted_alone(
    site: Path, tmp_path: Path
) -> None:
    report = child_report(ENDPOINT, site=site, cwd=tmp_path, INSTALL=False, PORT=free_port())
    assert report == {"errors": ["Unknown endpoint type: 'compattcp'"]}


# -- trial --------------------------------------------------------------------------------------


TINY_TEST = """
from twisted.trial import unittest


class Tiny(unittest.TestCase):
    def test_adds(self):
        self.assertEqual(1 + 1, 2)
"""


def test_trial_uses_an_entry_point_reporter_only_with_the_wrapper(
    site: Path, tmp_path: Path
) -> None:
    tiny = tmp_path / "test_tiny.py"
    tiny.write_text(TINY_TEST, encoding="utf-8")

    wrapped = run(WRAPPER, "trial", "--reporter=compatreporter", str(tiny),
                  site=site, cwd=tmp_path)
    output = wrapped.stdout + wrapped.stderr
    assert wrapped.returncode == 0, output
    assert f"{REPORTER_MARKER}: 1 run, passed" in wrapped.stdout
    assert "test_adds" in wrapped.stdout
    assert_no_traceback(output)

    plain = run(PLAIN, "trial", "--reporter=compatreporter", str(tiny),
                site=site, cwd=tmp_path)
    assert plain.returncode != 0
    assert "Only pass names of Reporter plugins to --reporter" in plain.stderr
    assert REPORTER_MARKER not in plain.stdout + plain.stderr


def test_trial_lists_the_entry_point_reporter_only_with_the_wrapper(
    site: Path, tmp_path: Path
) -> None:
    wrapped = run(WRAPPER, "trial", "--help-reporters", site=site, cwd=tmp_path)
    assert wrapped.returncode == 0, wrapped.stderr
    assert "compatreporter" in wrapped.stdout
    assert "verbose" in wrapped.stdout

    plain = run(PLAIN, "trial", "--help-reporters", site=site, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "verbose" in plain.stdout
    assert "compatreporter" not in plain.stdout
