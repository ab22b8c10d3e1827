"""Cache files (``compat_plugin._store``): the shapes a stored document is checked against,
atomic writes, the places a cache may live and the one note about a place that refused, the
digest of per-user file names.

The pure parts are tested as properties; writes go to real files, and the reader that must
never see half a file races a real writer process.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat_plugin import _store
from compat_plugin._records import Origin
from compat_plugin._store import (
    BOOL,
    INT,
    STAMP,
    STR,
    CacheFile,
    digest,
    equal_to,
    list_of,
    mapping,
    optional,
    record,
    row,
    text,
    user_cache_root,
    write_atomic,
)

from .conftest import JSON_VALUES, crc_adler, run_python

ORIGIN = Origin("directory", path="/some/plugins")



# -- shapes -------------------------------------------------------------------------------------


def is_int(value: object) -> bool:
    """An integer proper: JSON's ``true`` is an int to Python, never to a cache."""
    return isinstance(value, int) and not isinstance(value, bool)


@given(value=JSON_VALUES)
def test_scalar_shapes_compare_types_exactly(value: object) -> None:
    assert INT(value) is is_int(value)
    assert STR(value) is isinstance(value, str)
    assert BOOL(value) is isinstance(value, bool)
    assert text(value) is (value is None or isinstance(value, str))
    assert STAMP(value) is (isinstance(value, list) and len(value) == 2
                            and all(is_int(item) for item in value))


@pytest.mark.parametrize(
    ("expected", "value", "fits"),
    [
        (1, 1, True), (1, True, False), (1, 1.0, False), (True, 1, False), (True, True, True),
        ("4", 4, False), (4, 4, True), (None, None, True), (None, 0, False), ("a", "a", True),
    ],
)
def test_equal_to_compares_the_type_too(expected: object, value: object, fits: bool) -> None:
    assert equal_to(expected)(value) is fits


@settings(max_examples=200)
@given(value=JSON_VALUES)
def test_composite_shapes(value: object) -> None:
    def strings(item: object) -> bool:
        return isinstance(item, list) and all(isinstance(x, str) for x in item)

    assert list_of(STR)(value) is strings(value)
    # The general form (a shape that is not a single type) agrees with the fast one.
    assert list_of(optional(STR))(value) is (
        isinstance(value, list) and all(x is None or isinstance(x, str) for x in value)
    )
    assert list_of(list_of(INT))(value) is (
        isinstance(value, list)
        and all(isinstance(x, list) and all(is_int(y) for y in x) for x in value)
    )
    assert row(STR, INT)(value) is (
        isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
        and is_int(value[1])
    )
    assert mapping(list_of(STR))(value) is (
        isinstance(value, dict) and all(strings(v) for v in value.values())
    )
    assert record(a=INT, b=optional(STR))(value) is (
        isinstance(value, dict) and is_int(value.get("a"))
        and (value.get("b", 0) is None or isinstance(value.get("b"), str))
    )


def test_record_wants_its_fields_and_allows_others() -> None:
    shape = record(a=INT, b=list_of(STR))
    assert shape({"a": 1, "b": []})
    assert shape({"a": 1, "b": ["x"], "extra": object()})
    assert not shape({"a": 1})
    assert not shape({"a": True, "b": []})
    assert not shape([("a", 1), ("b", [])])
    assert record(c=optional(INT))({"c": None})
    assert not record(c=optional(INT))({})  # an absent field is not a null one


# -- writes ------------------------------------------------------------------------------------


def test_write_atomic_creates_the_directory_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "file.json"
    write_atomic(str(target), b"first")
    inode = target.stat().st_ino
    write_atomic(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert target.stat().st_ino != inode  # replaced, not rewritten in place
    assert [path.name for path in target.parent.iterdir()] == ["file.json"]


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "file.json"
    first, second = b"[" + b"1," * 300_000 + b"1]", b"[" + b"2," * 400_000 + b"2]"
    write_atomic(str(target), first)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from compat_plugin._store import write_atomic\n"
            "a, b = b'[' + b'1,' * 300000 + b'1]', b'[' + b'2,' * 400000 + b'2]'\n"
            "for i in range(200):\n"
            "    write_atomic(sys.argv[1], b if i % 2 == 0 else a)\n",
            str(target),
        ]
    )
    try:
        reads = 0
        while writer.poll() is None:
            assert target.read_bytes() in (first, second)
            reads += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert reads > 0
    assert [path.name for path in target.parent.iterdir()] == ["file.json"]


def test_write_atomic_failing_to_replace_leaves_nothing(tmp_path: Path) -> None:
    parent = tmp_path / "cache"
    target = parent / "file.json"
    target.mkdir(parents=True)
    (target / "inside").write_bytes(b"x")
    with pytest.raises(OSError):
        write_atomic(str(target), b"{}")
    assert [path.name for path in parent.iterdir()] == ["file.json"]
    assert target.is_dir()


def test_write_atomic_failing_to_write_leaves_nothing(tmp_path: Path) -> None:
    parent = tmp_path / "cache"
    target = parent / "file.json"
    write_atomic(str(target), b"old")
    with pytest.raises(TypeError):
        write_atomic(str(target), "not bytes")  # type: ignore[arg-type]
    assert [path.name for path in parent.iterdir()] == ["file.json"]
    assert target.read_bytes() == b"old"


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "mode"), [(0o027, 0o640), (0o077, 0o600), (0o000, 0o666)])
def test_write_atomic_gives_an_ordinary_file_mode(tmp_path: Path, mask: int, mode: int) -> None:
    os.umask(mask)
    target = tmp_path / "file.json"
    write_atomic(str(target), b"{}")
    assert stat.S_IMODE(target.stat().st_mode) == mode


# -- where a cache lives --------------------------------------------------------------------------


def blocked(tmp_path: Path, name: str) -> Path:
    """A place no process can write, root included: its directory is a regular file."""
    (tmp_path / name).write_text("not a directory\n")
    return tmp_path / name / "cache.json"


def notes(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "compat_plugin"]


def test_cache_file_writes_to_the_first_place_that_takes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    first, second = tmp_path / "first" / "cache.json", tmp_path / "second" / "cache.json"
    file = CacheFile([str(first), str(second)])
    assert file.places == (str(first), str(second))
    assert file.write(b"data") == str(first)
    assert first.read_bytes() == b"data"
    assert not second.exists()
    assert notes(caplog) == []


def test_a_place_that_refuses_is_said_once_and_not_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    refusing, fallback = blocked(tmp_path, "refusing"), tmp_path / "fallback" / "cache.json"
    file = CacheFile([str(refusing), str(fallback)])
    assert file.write(b"one") == str(fallback)
    ((level, message),) = notes(caplog)
    assert level == "INFO"
    assert message.startswith(f"plugin cache {refusing} is not writable (")
    assert message.endswith(f"); using {fallback} instead")

    (tmp_path / "refusing").unlink()  # would take it now, but is not asked again
    assert file.write(b"two") == str(fallback)
    assert fallback.read_bytes() == b"two"
    assert not (tmp_path / "refusing").exists()
    assert len(notes(caplog)) == 1


def test_when_every_place_refuses_each_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    first, second = blocked(tmp_path, "first"), blocked(tmp_path, "second")
    file = CacheFile([str(first), str(second)])
    for _ in range(3):
        assert file.write(b"data") is None
    said = notes(caplog)
    assert [level for level, _ in said] == ["INFO", "INFO"]
    assert said[0][1].endswith(f"; using {second} instead")
    assert said[1][1].startswith(f"plugin cache {second} is not writable (")
    assert "using" not in said[1][1]


def test_a_place_that_holds_the_data_is_not_written(tmp_path: Path) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    second.write_bytes(b"same")
    before = second.stat().st_ino, second.stat().st_mtime_ns
    asked: list[str] = []

    def holds(place: str) -> bool:
        asked.append(place)
        return place == str(second)

    file = CacheFile([str(second), str(first)])
    assert file.write(b"same", holds) == str(second)
    assert (second.stat().st_ino, second.stat().st_mtime_ns) == before
    assert asked == [str(second)]
    assert not first.exists()


@pytest.mark.parametrize(("value", "disabled"), [("1", True), ("yes", True), ("0", False),
                                                 ("", False)])
def test_no_cache_write_turns_writing_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    value: str, disabled: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    monkeypatch.setenv("COMPAT_PLUGIN_NO_CACHE_WRITE", value)
    target = tmp_path / "cache.json"
    assert _store.writes_disabled() is disabled
    written = CacheFile([str(target)]).write(b"data")
    assert written == (None if disabled else str(target))
    assert target.exists() is not disabled
    assert notes(caplog) == []


def test_per_user_cache_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(tmp_path / "explicit"))
    assert user_cache_root() == str(tmp_path / "explicit")
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", "")
    assert user_cache_root() == str(tmp_path / "xdg" / "compat_plugin")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert user_cache_root() == str(tmp_path / "home" / ".cache" / "compat_plugin")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache_root() == str(tmp_path / "home" / ".cache" / "compat_plugin")


def test_relative_cache_directories_are_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", "explicit")
    assert user_cache_root() == str(tmp_path / "explicit")
    monkeypatch.delenv("COMPAT_PLUGIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "xdg")
    assert user_cache_root() == str(tmp_path / "xdg" / "compat_plugin")


def test_per_user_cache_root_on_macos(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("COMPAT_PLUGIN_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # not a macOS convention
    assert user_cache_root() == str(tmp_path / "home" / "Library" / "Caches" / "compat_plugin")
    monkeypatch.setenv("COMPAT_PLUGIN_CACHE_DIR", str(tmp_path / "explicit"))
    assert user_cache_root() == str(tmp_path / "explicit")


def test_per_user_cache_root_on_windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delenv("COMPAT_PLUGIN_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert user_cache_root() == str(tmp_path / "local" / "compat_plugin")
    monkeypatch.setenv("LOCALAPPDATA", "")
    assert user_cache_root() == str(tmp_path / "home" / "AppData" / "Local" / "compat_plugin")


def test_interpreter_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _store.interpreter_tag() == sys.implementation.cache_tag
    monkeypatch.setattr(sys.implementation, "cache_tag", None)
    major, minor = sys.version_info[:2]
    assert _store.interpreter_tag() == f"{sys.implementation.name}-{major}{minor}"


def test_bytecode_directory_follows_the_pycache_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside is where the bytecode goes: ``__pycache__``, or the directory's mirror under
    ``sys.pycache_prefix`` (a relative directory, the working directory's, taken from where
    the process is)."""
    plugins = tmp_path / "src" / "plugins"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    assert _store.bytecode_directory(str(plugins)) == str(plugins / "__pycache__")
    assert _store.bytecode_directory("") == os.path.join(".", "__pycache__")
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    mirror = prefix / plugins.relative_to(plugins.anchor)
    assert _store.bytecode_directory(str(plugins)) == str(mirror)
    assert _store.bytecode_directory(os.path.join("src", "plugins")) == str(mirror)
    assert _store.bytecode_directory("") == str(prefix / tmp_path.relative_to(tmp_path.anchor))
    monkeypatch.setattr(sys.implementation, "cache_tag", None)
    assert _store.bytecode_directory(str(plugins)) == str(plugins / "__pycache__")


@pytest.mark.parametrize("level", ["1", "2"])
def test_interpreter_tag_names_the_optimization_level(level: str) -> None:
    """As bytecode: ``-O`` drops ``if __debug__:`` code, ``-OO`` docstrings too."""
    tag = sys.implementation.cache_tag
    for env in ({"PYTHONOPTIMIZE": level}, {}):
        child = run_python("from compat_plugin._store import interpreter_tag\n"
                           "print(interpreter_tag())", env=env)
        assert child.stdout.strip() == (f"{tag}.opt-{level}" if env else tag)


# -- reading a cache file ---------------------------------------------------------------------


def test_read_cache_returns_the_bytes_and_the_time_written(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(b"{}")
    assert _store.read_cache(str(path)) == (b"{}", path.stat().st_mtime_ns)
    assert _store.read_cache(str(tmp_path / "missing.json")) is None
    assert _store.read_cache(str(tmp_path)) is None


def test_read_cache_of_a_file_larger_than_any_cache_is_none(tmp_path: Path) -> None:
    path = tmp_path / "grown.json"
    with path.open("wb") as grown:
        grown.truncate(_store.LARGEST + 1)  # sparse: nothing written
    assert _store.read_cache(str(path)) is None
    with path.open("r+b") as grown:
        grown.truncate(_store.LARGEST)
    assert _store.read_cache(str(path)) is not None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_read_cache_of_no_regular_file_is_none_at_once(tmp_path: Path) -> None:
    """A FIFO would wait for a writer, a device never end: in a child, with limits."""
    fifo, device = tmp_path / "fifo.json", tmp_path / "zero.json"
    os.mkfifo(fifo)
    device.symlink_to("/dev/zero")
    child = run_python("import resource, sys\n"
                       "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
                       "from compat_plugin._store import read_cache\n"
                       "print([read_cache(path) for path in sys.argv[1:]])",
                       args=[str(fifo), str(device)], timeout=60)
    assert child.stdout.strip() == "[None, None]"


# -- the digest of per-user file names ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "0000000000000001"), ("a", "e8b7be4300620062"), ("foobar", "9ef61f9508ab027a")],
)
def test_digest_is_crc32_then_adler32(value: str, expected: str) -> None:
    assert crc_adler(value) == expected
    assert digest(value) == expected


@given(value=st.text() | st.sampled_from(["/x/\udcff", "/\u00e9t\u00e9/plugins"]))
def test_digest_agrees_with_the_documented_composition(value: str) -> None:
    assert digest(value) == crc_adler(value)


# -- reading ------------------------------------------------------------------------------------


def test_read_cache_gives_none_for_what_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"data")
    assert _store.read_cache(str(tmp_path / "file")) == (
        b"data", (tmp_path / "file").stat().st_mtime_ns)
    assert _store.read_cache(str(tmp_path / "absent")) is None
    assert _store.read_cache(str(tmp_path)) is None
    assert _store.read_cache("bad\x00name") is None


@pytest.mark.parametrize(("value", "read"), [("1", False), ("yes", False), ("0", True), ("", True)])
def test_no_cache_read_makes_every_cache_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, read: bool
) -> None:
    (tmp_path / "file").write_bytes(b"data")
    monkeypatch.setenv("COMPAT_PLUGIN_NO_CACHE_READ", value)
    written = (tmp_path / "file").stat().st_mtime_ns
    assert (_store.read_cache(str(tmp_path / "file")) == (b"data", written)) is read


@pytest.mark.parametrize("raw", [b"", b"not json", b"[" * 100_000, b"\xff", b"{", b"NaNa"])
def test_parse_json_gives_none_and_a_debug_record(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="compat_plugin")
    assert _store.parse_json(raw, "/the/place") is None
    ((level, message),) = notes(caplog)
    assert level == "DEBUG"
    assert message.startswith("ignoring unreadable plugin cache /the/place: ")


def test_dump_json_is_compact_ascii() -> None:
    dumped = _store.dump_json({"a": ["\u00e9", None, "\udcff"]})
    assert dumped == '{"a":["\\u00e9",null,"\\udcff"]}'
    assert dumped.isascii()


@settings(max_examples=200)
@given(document=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5),
       after=st.binary(max_size=20), at=st.integers(min_value=0))
def test_a_sealed_document_shows_any_change(document: dict[str, Any], after: bytes,
                                            at: int) -> None:
    """Its text is compact ASCII JSON whose last member is its checksum, the CRC-32 of the
    document's own compact text and of what follows it in the file; a byte changed anywhere
    in either, or added after the document, no longer holds (or is no JSON)."""
    document.pop("checksum", None)
    raw = _store.sealed(document, after)
    read = json.loads(raw)
    assert read == {**document, "checksum": read["checksum"]}
    assert raw.isascii() and raw.endswith(b'"checksum":%d}' % read["checksum"])
    own = json.dumps(document, separators=(",", ":")).encode()
    assert read["checksum"] == zlib.crc32(own + after)
    assert _store.seal_holds(raw, read["checksum"], after)
    assert _store.seal_holds(raw, read["checksum"], memoryview(after))
    assert not _store.seal_holds(raw + b" ", read["checksum"], after)
    whole = raw + after
    position = at % len(whole)
    changed = whole[:position] + bytes([whole[position] ^ 1]) + whole[position + 1:]
    text, rest = changed[:len(raw)], changed[len(raw):]
    try:
        recorded = json.loads(text)["checksum"]
    except (ValueError, KeyError, TypeError):
        return
    assert not (type(recorded) is int and _store.seal_holds(text, recorded, rest))


def test_full_collections_are_held_and_the_thresholds_restored() -> None:
    before = gc.get_threshold()
    young, middle, oldest = before
    with _store.held_full_collections():
        assert gc.isenabled()  # young collections keep their course
        held = gc.get_threshold()
        assert held[:2] == (young, middle) and held[2] > 10**6
        with _store.held_full_collections():
            assert gc.get_threshold() == held
        assert gc.get_threshold() == held  # the inner hold leaves them to the outer one
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), _store.held_full_collections():
        raise RuntimeError("inside")
    assert gc.get_threshold() == before
    try:
        with _store.held_full_collections():
            gc.set_threshold(500)  # the young one set meanwhile stays; the hold is given back
        assert gc.get_threshold() == (500, middle, oldest)
        with _store.held_full_collections():
            gc.set_threshold(500, 5, 7)  # the oldest one set meanwhile stays too
        assert gc.get_threshold() == (500, 5, 7)
    finally:
        gc.set_threshold(*before)


def _fork() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads running
        return os.fork()


def _exit_code(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_child_forked_during_holds_holds_nothing() -> None:
    before = gc.get_threshold()
    inside, leave = threading.Event(), threading.Event()

    def another_pass() -> None:
        with _store.held_full_collections():
            inside.set()
            leave.wait()

    other = threading.Thread(target=another_pass)
    other.start()
    inside.wait()
    try:
        assert gc.get_threshold()[2] > 10**6
        # Forked while only another thread holds: that hold never ends in the child, which
        # gets the threshold back at once; its own holds work as anywhere.
        pid = _fork()
        if pid == 0:
            os._exit(0 if gc.get_threshold() == before and _holds_and_restores() else 1)
        assert _exit_code(pid) == 0
        # Forked inside a hold of its own thread: none either (a worker may run its task and
        # exit, never leaving the hold), and leaving it changes nothing.
        pid, unheld, ended = -1, False, False
        try:
            with _store.held_full_collections():
                pid = _fork()
                unheld = gc.get_threshold() == before
            ended = gc.get_threshold() == before and _holds_and_restores()
        finally:
            if pid == 0:
                os._exit(0 if unheld and ended else 1)
        assert _exit_code(pid) == 0
    finally:
        leave.set()
        other.join()
    assert gc.get_threshold() == before


def _at_each_step(step: Callable[[], object]) -> int:
    """Hold once for every line of ``held_full_collections``' own steps before its body, in a
    thread of its own, calling ``step`` (from a trace function) at that line; each time, no
    hold is left after it and the thresholds are as before.  Returns how many lines there
    were."""
    before = gc.get_threshold()
    for at in range(1, 100):
        lines, body = _hold_stepping_in(at, step)
        assert not _store._holders and gc.get_threshold() == before, at
        if body and lines < at:
            return at - 1
    raise AssertionError("the body never ran")


def _hold_stepping_in(at: int, step: Callable[[], object]) -> tuple[int, bool]:
    """One hold, ``step`` called at its ``at``-th line before its body: how many such lines
    ran, and whether the body did."""
    steps = _store.held_full_collections.__wrapped__.__code__  # type: ignore[attr-defined]
    state = {"lines": 0, "body": False}

    def tracing(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code is steps and event == "line" and not state["body"]:
            state["lines"] += 1
            if state["lines"] == at:
                step()
        return tracing

    def hold() -> None:
        sys.settrace(tracing)
        try:
            with _store.held_full_collections():
                state["body"] = True
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)

    worker = threading.Thread(target=hold, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), f"stuck at line {at}"
    return state["lines"], bool(state["body"])


def test_a_hold_interrupted_before_its_body_runs_is_undone() -> None:
    """An exception (a KeyboardInterrupt, from a signal handler) may arrive at any line of a
    hold's own steps: wherever it comes before the body runs, no hold is left, nor the
    threshold raised, nor the raised value kept as the one to give back."""

    def interrupt() -> None:
        raise KeyboardInterrupt

    assert _at_each_step(interrupt) >= 5
    assert _holds_and_restores()


def test_a_hold_begun_in_the_middle_of_another_s_steps_goes_ahead() -> None:
    """Code may run in the middle of a hold's own steps, in its thread -- a finalizer or ``gc``
    callback of a collection they set off, a signal handler, a debugger's trace function --
    and call getPlugins: that second hold goes ahead, holds, and leaves the first as it was."""
    seen: list[bool] = []

    def hold_again() -> None:
        with _store.held_full_collections():
            seen.append(gc.get_threshold()[2] > 10**6)

    lines = _at_each_step(hold_again)
    assert lines >= 5 and seen == [True] * len(seen) and len(seen) >= lines

def _holds_and_restores() -> bool:
    before = gc.get_threshold()
    with _store.held_full_collections():
        held = gc.get_threshold()[2] > 10**6
    return held and gc.get_threshold() == before


def test_holds_of_several_threads_give_the_threshold_back_once_all_have_ended() -> None:
    before = gc.get_threshold()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads taking turns as often as they can
    during: list[int] = []
    left_raised = 0

    def passes(started: threading.Barrier, pause: bool) -> None:
        started.wait()
        for _ in range(50):
            with _store.held_full_collections():
                if pause:
                    time.sleep(0)  # another thread's turn, mid-pass
                during.append(gc.get_threshold()[2])

    try:
        for round_ in range(100):  # the interleavings differ from one round to the next
            started = threading.Barrier(4)
            threads = [threading.Thread(target=passes, args=(started, round_ % 2 == 0))
                       for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if gc.get_threshold() != before:
                left_raised += 1
                gc.set_threshold(*before)
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*before)
    assert left_raised == 0
    # Each pass held -- but for an instant where one begins as the last ends, which a thread
    # taking its turn at every opportunity may fall on now and then.
    assert len(during) == 20000 and sum(third > 10**6 for third in during) >= 0.9 * 20000
