"""How the command line lays text out: tables aligned by the columns a terminal gives each
character, cut to a width."""

from __future__ import annotations

from compat_plugin._output import display_width, table


def test_wide_characters_take_two_columns_and_marks_none() -> None:
    assert display_width("rock") == 4
    assert display_width("石頭") == 4  # wide
    assert display_width("\uff21\uff22") == 4  # full-width Latin
    assert display_width("café") == 4  # one precomposed letter
    assert display_width("cafe\u0301") == 4  # a combining accent after its letter
    assert display_width("a\u200db") == 2  # a zero-width joiner
    assert display_width("co\xadop") == 5  # a soft hyphen, which terminals show
    assert display_width("\u1112\u1161\u11ab") == 2  # 한, decomposed: one wide syllable


def test_cells_are_padded_by_the_columns_they_take() -> None:
    rows = [("石頭", "wide"), ("rock", "narrow"), ("cafe\u0301", "marked")]
    printed = table(("PLUGIN", "DESCRIPTION"), rows)
    assert printed.splitlines() == ["PLUGIN  DESCRIPTION", "石頭    wide", "rock    narrow",
                                    "cafe\u0301    marked"]


def _columns(line: str) -> int:
    """The columns of a line of ASCII, CJK ideographs and kana (wide), and "…" (narrow)."""
    return sum(2 if "\u3040" <= character <= "\u9fff" else 1 for character in line)


def test_lines_are_cut_to_the_width_in_columns() -> None:
    rows = [("a", "東京の石は硬い" * 4), ("b", "short")]
    for width in range(6, 30):
        lines = table(("X", "WHAT"), rows, width).splitlines()
        assert all(_columns(line) <= width for line in lines), width
        assert lines[1].endswith("…")
        # Cut no shorter than the width allows: one more wide character would not fit.
        assert _columns(lines[1]) >= width - 1
    assert table(("X", "WHAT"), rows, 100).splitlines()[2] == "b  short"
