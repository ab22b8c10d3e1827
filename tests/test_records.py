"""The record types: at run time, tuples that behave as the named tuples type checkers see."""

from __future__ import annotations

import ast
import copy
import pickle
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from compat_plugin import _records
from compat_plugin._records import (
    Discovery,
    LoadError,
    ModuleRecords,
    Origin,
    PluginRecord,
    Skip,
    Stamp,
    missing_module,
)

# Typed loosely: type checkers see NamedTuple classes, the run time sees Record classes.
RECORDS: list[Any] = [Stamp, Origin, PluginRecord, ModuleRecords, LoadError, Skip, Discovery]


def _declarations() -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """The fields and defaults of the ``typing.NamedTuple`` classes type checkers read, by
    record name, from the module's source."""
    tree = ast.parse(Path(_records.__file__).read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If)
                   and ast.unparse(node.test) == "TYPE_CHECKING")
    found: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
    for declaration in guarded.body:
        assert isinstance(declaration, ast.ClassDef)
        fields: list[str] = []
        defaults: dict[str, Any] = {}
        for statement in declaration.body:
            assert isinstance(statement, ast.AnnAssign)
            assert isinstance(statement.target, ast.Name)
            fields.append(statement.target.id)
            if statement.value is not None:
                defaults[statement.target.id] = ast.literal_eval(statement.value)
        found[declaration.name.lstrip("_")] = (tuple(fields), defaults)
    return found


def test_run_time_fields_are_the_declared_ones() -> None:
    declared = _declarations()
    assert sorted(declared) == sorted(cls.__name__ for cls in RECORDS)
    for cls in RECORDS:
        fields, defaults = declared[cls.__name__]
        assert cls._fields == fields, cls
        assert cls._field_defaults == defaults, cls
        assert cls.__match_args__ == fields, cls


def _sample(cls: Any) -> tuple[object, ...]:
    return tuple(f"{cls.__name__}-{field}" for field in cls._fields)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_a_record_behaves_as_the_named_tuple_of_its_fields(cls: Any) -> None:
    defaults = tuple(cls._field_defaults.values())
    twin = namedtuple(cls.__name__, cls._fields, defaults=defaults)  # type: ignore[misc]
    values = _sample(cls)
    made, expected = cls(*values), twin(*values)
    assert isinstance(made, tuple) and made == expected and tuple(made) == values
    assert hash(made) == hash(values)
    assert repr(made) == repr(expected)
    assert made._asdict() == dict(expected._asdict())
    assert [getattr(made, field) for field in cls._fields] == list(values)
    assert cls(**dict(zip(cls._fields, values))) == made
    assert cls._make(values) == made and type(cls._make(values)) is cls
    first = cls._fields[0]
    replaced = made._replace(**{first: "changed"})
    assert type(replaced) is cls and replaced == expected._replace(**{first: "changed"})
    for copied in (pickle.loads(pickle.dumps(made)), copy.copy(made), copy.deepcopy(made)):
        assert type(copied) is cls and copied == made
    required = len(cls._fields) - len(cls._field_defaults)
    if cls._field_defaults:
        assert cls(*values[:required]) == twin(*values[:required])
    for wrong in (values[:-1], (*values, "one too many")):
        with pytest.raises(TypeError) as theirs:
            twin._make(wrong)
        with pytest.raises(TypeError) as ours:
            cls._make(wrong)
        assert str(ours.value) == str(theirs.value)
    if hasattr(copy, "replace"):  # Python 3.13
        changed = copy.replace(made, **{first: "changed"})
        assert type(changed) is cls and changed == replaced
    assert [name for name in cls._fields if getattr(cls, name).__doc__
            != getattr(twin, name).__doc__] == []  # what the API reference leaves out
    assert cls.__module__ == "compat_plugin._records"


def test_a_record_says_what_it_was_given_wrongly() -> None:
    # The constructor's name, as Python 3.10 on gives it (before, without the class).
    with pytest.raises(TypeError, match=r"^(Stamp\.)?__new__\(\) missing 1 required "
                                        r"positional argument: 'size'$"):
        Stamp(1)  # type: ignore[call-arg]
    # As a named tuple of the running Python raises: ValueError before 3.13, TypeError since.
    for kind in (TypeError, ValueError):
        with pytest.raises(kind, match="unexpected field names: \\['where'\\]"):
            Origin("directory")._replace(where="/x")  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        Stamp(1, 2).size = 3  # type: ignore[misc]


# -- stamps ----------------------------------------------------------------------------------

SECOND = 10**9
RECORDED = Stamp(1_700_000_123 * SECOND + 756_789_012, 300)
LATER = 1_700_000_124 * SECOND + 1  # a cache file written after the recorded second


@pytest.mark.parametrize(("now", "matches"), [
    pytest.param(RECORDED, True, id="equal"),
    pytest.param(Stamp(1_700_000_123 * SECOND, 300), True, id="truncated"),
    pytest.param(Stamp(1_700_000_124 * SECOND, 300), False, id="rounded"),
    pytest.param(Stamp(1_700_000_123 * SECOND, 301), False, id="truncated-but-resized"),
    pytest.param(Stamp(1_700_000_122 * SECOND, 300), False, id="the-second-before"),
    pytest.param(Stamp(1_700_000_123 * SECOND + 1, 300), False, id="another-fraction"),
    pytest.param(None, False, id="gone"),
])
def test_a_recorded_stamp_matches_the_same_file_cut_to_whole_seconds(
    now: Stamp | None, matches: bool
) -> None:
    assert RECORDED.matches(now, LATER) is matches


def test_only_a_cache_written_after_the_recorded_second_accepts_its_cut() -> None:
    """A change later in the recorded second, cut to it, could not be told from the file
    recorded: a cache written within that second holds only exact stamps."""
    truncated = Stamp(1_700_000_123 * SECOND, 300)
    assert RECORDED.matches(truncated, 1_700_000_124 * SECOND)
    assert not RECORDED.matches(truncated, 1_700_000_123 * SECOND + 999_999_999)
    assert not RECORDED.matches(truncated, None)  # held in memory: exactly only
    assert RECORDED.matches(RECORDED, None)


def test_a_stamp_recorded_in_whole_seconds_matches_only_itself() -> None:
    whole = Stamp(1_700_000_123 * SECOND, 300)
    assert whole.matches(Stamp(1_700_000_123 * SECOND, 300), LATER)
    assert not whole.matches(Stamp(1_700_000_124 * SECOND, 300), LATER)
    assert not whole.matches(Stamp(1_700_000_122 * SECOND, 300), LATER)
    assert not whole.matches(Stamp(1_700_000_123 * SECOND + 456_789_012, 300), LATER)


def test_same_second_before_1970() -> None:
    recorded = -5 * SECOND - 250_000_000  # 1969-12-31T23:59:54.75
    assert _records.same_second(recorded, -6 * SECOND, 0)  # truncated towards the past
    assert not _records.same_second(recorded, -5 * SECOND, 0)
    assert not _records.same_second(recorded, -6 * SECOND, -5 * SECOND - SECOND // 2)  # in it


@pytest.mark.parametrize(("target", "error", "kind"), [
    ("pkg.mod", RuntimeError("boom"), "import error"),
    ("pkg.mod:plugin", RuntimeError("boom"), "inspection error"),
    # The record's own module (or its package) gone: it was never inspected.
    ("pkg.mod:plugin", ModuleNotFoundError("gone", name="pkg.mod"), "import error"),
    ("pkg.mod:plugin", ModuleNotFoundError("gone", name="pkg"), "import error"),
    # What the module imports gone, or another module of a similar name.
    ("pkg.mod:plugin", ModuleNotFoundError("gone", name="dependency"), "inspection error"),
    ("pkg.mod:plugin", ModuleNotFoundError("gone", name="pkg.mo"), "inspection error"),
])
def test_a_load_error_says_what_failed(target: str, error: BaseException, kind: str) -> None:
    assert LoadError(target, Origin("directory", path="/x"), error).kind == kind


@pytest.mark.parametrize(("error", "expected"), [
    (ModuleNotFoundError("gone", name="pkg.mod"), True),
    (ModuleNotFoundError("gone", name="pkg"), True),
    (ModuleNotFoundError("gone", name="pkg.mo"), False),
    (ModuleNotFoundError("gone", name="dependency"), False),
    (ModuleNotFoundError("gone"), False),
    (ImportError("gone", name="pkg.mod"), False),  # found, but failing
])
def test_a_missing_module_is_told_from_a_missing_dependency(
    error: BaseException, expected: bool
) -> None:
    assert missing_module(error, "pkg.mod") is expected
