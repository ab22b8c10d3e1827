"""The enable and disable patterns (``compat_plugin._rules``): pure decisions, taken before any
candidate is imported."""

from __future__ import annotations

import pytest

from compat_plugin._rules import Rules

from .conftest import run_python


def test_no_patterns_block_nothing() -> None:
    rules = Rules()
    assert rules.disable == ()
    assert rules.enable == ()
    assert rules.blocking(("anything", "pkg.plugins.anything"), "acme-tools") is None


def test_patterns_come_from_the_environment_then_the_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMPAT_PLUGIN_DISABLE", " first ,, second*,  ")
    rules = Rules(disable=["third", " ", ""], enable=[" keep ", ""])
    assert rules.disable == ("first", "second*", "third")
    assert rules.enable == ("keep",)


def test_the_environment_is_read_when_the_rules_are_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMPAT_PLUGIN_DISABLE", "early")
    rules = Rules()
    monkeypatch.setenv("COMPAT_PLUGIN_DISABLE", "late")
    assert rules.blocking(("early",)) == "early"
    assert rules.blocking(("late",)) is None


@pytest.mark.parametrize(
    ("pattern", "names", "blocked"),
    [
        ("gizmos", ("gizmos", "hostapp.plugins.gizmos"), True),
        ("hostapp.plugins.gizmos", ("gizmos", "hostapp.plugins.gizmos"), True),
        ("hostapp.plugins.*", ("gizmos", "hostapp.plugins.gizmos"), True),
        ("giz*", ("gizmos",), True),
        ("g?zmos", ("gizmos",), True),
        ("[fg]izmos", ("gizmos",), True),
        ("gizmo", ("gizmos",), False),
        ("izmos", ("gizmos",), False),
        # Globs are case-sensitive for module and entry-point names.
        ("Gizmos", ("gizmos",), False),
        ("*", ("anything",), True),
    ],
)
def test_disable_patterns_are_globs_over_every_name(
    pattern: str, names: tuple[str, ...], blocked: bool
) -> None:
    assert Rules(disable=[pattern]).blocking(names) == (pattern if blocked else None)


@pytest.mark.parametrize("pattern", ["acme-tools", "Acme_Tools", "ACME.tools", "acme_*", "acme-t*"])
def test_distribution_names_are_compared_normalized(pattern: str) -> None:
    """The distribution is named by its normalized key; the pattern is normalized as
    packaging normalizes names."""
    assert Rules(disable=[pattern]).blocking(("gizmos",), "acme-tools") == pattern


def test_a_distribution_pattern_does_not_match_other_distributions() -> None:
    rules = Rules(disable=["acme-tools"])
    assert rules.blocking(("gizmos",), "acme-toolsmith") is None
    assert rules.blocking(("gizmos",), "zeta-tools") is None
    assert rules.blocking(("acme-tools",)) == "acme-tools"  # the names still count


def test_enable_overrides_a_matching_disable_pattern() -> None:
    rules = Rules(disable=["acme-*", "hostapp.plugins.*"], enable=["acme-materials", "builtin"])
    assert rules.blocking(("metals",), "acme-materials") is None
    assert rules.blocking(("gizmos",), "acme-tools") == "acme-*"
    assert rules.blocking(("builtin", "hostapp.plugins.builtin")) is None
    assert rules.blocking(("slate", "hostapp.plugins.slate")) == "hostapp.plugins.*"


def test_enable_alone_blocks_nothing_and_the_first_blocking_pattern_is_named() -> None:
    assert Rules(enable=["x"]).blocking(("y",)) is None
    assert Rules(disable=["nomatch", "g*", "*"]).blocking(("gizmos",)) == "g*"


def test_packaging_is_imported_only_for_distribution_names() -> None:
    result = run_python(
        """
        import sys
        from compat_plugin._rules import Rules

        rules = Rules(disable=["gizmos"])
        assert rules.blocking(("gizmos", "hostapp.plugins.gizmos")) == "gizmos"
        before = "packaging" in sys.modules
        assert rules.blocking(("metals",), "acme-materials") is None
        print(before, "packaging.utils" in sys.modules)
        """
    )
    assert result.stdout.split() == ["False", "True"]
