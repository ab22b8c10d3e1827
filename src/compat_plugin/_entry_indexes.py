"""The process's entry-point indexes: each ``sys.path`` entry's, read, or built anew when the
entry's stamp changed; merged into a group's view; saved where each belongs; and the verdicts
of the host-compatibility gate, reused while what they depended on holds."""

from __future__ import annotations

import os
import sys

from ._entrypoints import (
    Declared,
    Distribution,
    EntryIndex,
    Gate,
    Shadowed,
    index_places,
    read_index,
    read_index_at,
    save_index,
)
from ._log import info, logger
from ._path_entries import custom_finders, entry_state, holds_no_metadata, path_entries
from ._records import Origin, Stamp, Value
from ._store import CacheFile, bytecode_directory, writes_disabled

# -- a group's view: the indexes merged -----------------------------------------------------


class Contribution(Value):
    """One distribution's share of a group: where it was found and in which index."""

    __slots__ = ("distribution", "source", "position")

    def __init__(self, distribution: Distribution, source: EntryIndex, position: int) -> None:
        self.distribution, self.source, self.position = distribution, source, position

    def origin(self, declared: Declared | None = None) -> Origin:
        d = self.distribution
        return Origin("entry-point", d.metadata, d.key, d.version,
                      declared.name if declared is not None else None)


class GroupView(Value):
    """A group as importlib-metadata sees it: the distributions whose entry points count, in
    ``sys.path`` order, the copies shadowed by them, and the indexes consulted."""

    __slots__ = ("contributions", "shadowed", "sources")

    def __init__(self, contributions: tuple[Contribution, ...],
                 shadowed: tuple[tuple[Shadowed, EntryIndex], ...],
                 sources: tuple[EntryIndex, ...]) -> None:
        self.contributions, self.shadowed, self.sources = contributions, shadowed, sources

    def locate(self, key: str) -> EntryIndex | None:
        """The index holding the copy of distribution ``key`` that counts, if any."""
        for with_metadata in (True, False):
            for source in self.sources:
                if source.holds(key, with_metadata):
                    return source
        return None


def merge(sources: list[tuple[int, EntryIndex]]) -> GroupView:
    """Merge indexes given in the order importlib-metadata consults them.

    Across entries the first copy of a distribution wins, copies with metadata before copies
    without; within an entry that was decided when it was indexed.
    """
    contributions: list[Contribution] = []
    shadowed: list[tuple[Shadowed, EntryIndex]] = []
    indexes = [index for _, index in sources]
    for at, (position, index) in enumerate(sources):
        for shadow in index.shadowed:
            shadowed.append((shadow, index))
        for distribution in index.distributions:
            winner = _winner(distribution, at, indexes)
            if winner is None:
                contributions.append(Contribution(distribution, index, position))
            else:
                shadow = Shadowed(distribution.key, distribution.version, distribution.metadata,
                                  winner.where(distribution.key))
                shadowed.append((shadow, index))
    return GroupView(tuple(contributions), tuple(shadowed), tuple(indexes))


def _winner(distribution: Distribution, at: int, indexes: list[EntryIndex]) -> EntryIndex | None:
    """The index of another copy that hides ``distribution`` (found in ``indexes[at]``)."""
    key = distribution.key
    if distribution.has_metadata:
        earlier = indexes[:at]
        return next((index for index in earlier if index.holds(key)), None)
    for index in indexes:
        if index.holds(key):
            return index
    return next((index for index in indexes[:at] if index.holds(key, False)), None)


# -- the process's indexes -----------------------------------------------------------------


class EntryIndexes:
    """What one process knows of the entry-point indexes: one per (entry, group)."""

    def __init__(self) -> None:
        self._indexes: dict[tuple[str, str], EntryIndex] = {}
        self._files: dict[tuple[str, str], CacheFile] = {}
        self._custom: dict[tuple[object, ...], tuple[list[EntryIndex], list[EntryIndex]]] = {}
        self._said: set[str] = set()  # the unread metadata directories already reported

    def view(self, group: str) -> GroupView:
        """The group as importlib-metadata sees it now.  A distribution whose
        ``entry_points.txt`` changed since its entry was indexed has the entry read again
        first, so no index names a module to import by itself; so has one this user may not
        look into (the index was built by one who could) -- unless this user's own index of
        the entry, in the per-user cache, is current."""
        view = self._merged(group)
        stale = {id(c.source): (c.source, why) for c in view.contributions
                 if (why := _redeclared(c))}
        for index, why in stale.values():
            own = self._own_index(index.entry, group) if why == "denied" else None
            if own is None:
                info("entry points of %s %s; reading its metadata again", index.entry or ".",
                     _REASONS[why])
                own = _built(index.entry, group, index.stamp, index.links, index)
            self._indexes[index.entry, group] = own
        return self._merged(group) if stale else view

    def _own_index(self, entry: str, group: str) -> EntryIndex | None:
        """This user's current index of ``entry`` in the per-user cache, if any, in which no
        distribution is one this user may not look into."""
        (place,) = index_places(entry, group, False)
        own = read_index_at(place, entry, group)
        if (own is None or not own.describes(entry_state(entry))
                or any(_redeclared(Contribution(d, own, 0)) for d in own.distributions)):
            return None
        self._report_unread(own)
        return own

    def _merged(self, group: str) -> GroupView:
        sources = [(position, self.entry_index(entry, group))
                   for position, entry in path_entries()]
        finders = custom_finders()
        if finders:
            before, after = self._custom_sources(group, finders)
            sources = [*((-1, s) for s in before), *sources,
                       *((len(sys.path), s) for s in after)]
        return merge(sources)

    def entry_index(self, entry: str, group: str) -> EntryIndex:
        """The index of one ``sys.path`` entry for ``group``, read or built if its stamp
        changed."""
        state = entry_state(entry)
        stamp, links, is_directory = state
        known = self._indexes.get((entry, group))
        if known is not None and known.describes(state):
            return known
        if stamp is None:  # not there: it holds nothing
            index = EntryIndex(entry, group, None)
        else:
            current, stored = read_index(entry, group, state)
            if current is not None:
                index = current
                self._report_unread(index)
            elif is_directory and holds_no_metadata(entry):
                # Nothing to read, nor to store.
                index = EntryIndex(entry, group, stamp, links=links)
            else:
                if is_directory and _made_pycache(entry):
                    stamp, links, _ = entry_state(entry)
                index = _built(entry, group, stamp, links, known or stored)
        self._indexes[entry, group] = index
        return index

    def _report_unread(self, index: EntryIndex) -> None:
        """Say once per process what a stored index could not read when it was built (the
        process that built it said why)."""
        for unread in index.unread:
            if unread.where not in self._said:
                self._said.add(unread.where)
                logger().warning("the entry points of the distribution at %s could not be read "
                                 "when %s was indexed: they are left out until it is mended "
                                 "or made readable", unread.where, index.entry or ".")

    def _custom_sources(self, group: str, finders: list[object]
                        ) -> tuple[list[EntryIndex], list[EntryIndex]]:
        key = (group, *map(id, finders))
        found = self._custom.get(key)
        if found is None:
            from ._metadata import custom_sources

            found = self._custom[key] = custom_sources(group)
        return found

    def save(self, index: EntryIndex, regenerating: bool = False) -> None:
        """Write ``index`` where it belongs, if it holds something its file does not.

        With ``regenerating`` (``cache regenerate``), it goes beside its entry whenever that
        can be written -- except beside ``sys.path[0]``, the running program's own directory.
        """
        if not index.dirty or index.stamp is None or index.entry.startswith("<"):
            return
        key = (index.entry, index.group)
        file = self._files.get(key)
        if file is None:
            first = path_entries()[:1] if regenerating else []
            forced = regenerating and (not first or index.entry != first[0][1])
            beside = may_live_beside(index, forced)
            file = self._files[key] = CacheFile(index_places(index.entry, index.group, beside))
        written = save_index(index, file)
        if written is not None and written == index_places(index.entry, index.group, True)[0]:
            self._settle(index)

    def _settle(self, index: EntryIndex) -> None:
        """Record the entry as it is after its index was written into its ``__pycache__``.

        On a file system that copies a directory up on the first write below it -- overlayfs,
        where container image builds run -- that write gives the entry another size and link
        count (never another time): the index would be stale for every later process, which
        in a read-only container reads the installed metadata again each time.  The verdicts
        that found a required distribution in the entry (in any index) are moved along.  An
        entry whose time changed meanwhile had a distribution added or removed: its index
        stays stale.
        """
        stamp, links, _ = entry_state(index.entry)
        recorded = index.stamp
        if (stamp is None or recorded is None or stamp.mtime_ns != recorded.mtime_ns
                or (stamp, links) == (recorded, index.links)):
            return
        index.stamp, index.links, index.dirty = stamp, links, True
        for other in self._indexes.values():
            for key, gate in list(other.gates.items()):
                moved = tuple((k, e, stamp if (e, s) == (index.entry, recorded) else s)
                              for k, e, s in gate.depends)
                if moved != gate.depends:
                    other.judged(key, Gate(gate.reason, moved))
        for other in [index, *self._indexes.values()]:
            known = self._files.get((other.entry, other.group))
            if other.dirty and known is not None:
                save_index(other, known)

    def gate(self, contribution: Contribution, group: str, view: GroupView) -> str:
        """Why ``contribution``'s distribution does not fit the installed host ("" if it
        does), from the verdict its index keeps while what it depended on holds."""
        distribution = contribution.distribution
        if not distribution.requires:
            return ""
        gate = contribution.source.gates.get(distribution.key)
        if gate is None or not _gate_holds(gate.depends, view):
            from ._gate import judge

            gate = judge(distribution, group.partition(".")[0], view.locate)
            contribution.source.judged(distribution.key, gate)
        return gate.reason


def _built(entry: str, group: str, stamp: Stamp | None, links: int,
           previous: EntryIndex | None) -> EntryIndex:
    from ._metadata import index_entry

    index = index_entry(entry, group, stamp)
    index.links, index.dirty = links, True
    if previous is not None:
        index.adopt_scans(previous)
    return index


def may_live_beside(index: EntryIndex, forced: bool = False) -> bool:
    """Whether an index may be written where its entry's bytecode is kept (its
    ``__pycache__``, or under the pycache prefix): the entry is a directory that holds
    distributions or already has that bytecode directory (so no cache directory is made for
    where a program merely runs), or ``forced`` (``cache regenerate``)."""
    if not os.path.isdir(index.entry or "."):
        return False
    return (forced or index.names != "\n" or index.nameless != "\n"
            or os.path.isdir(bytecode_directory(index.entry)))


def make_pycaches() -> None:
    """Create the ``__pycache__`` of every ``sys.path`` entry that holds distributions, as
    a first call does before it indexes one (``cache regenerate`` does it before recording
    anything, so that no entry's time changes while it runs)."""
    for _, entry in path_entries():
        if os.path.isdir(entry or ".") and not holds_no_metadata(entry):
            _made_pycache(entry)


def _made_pycache(entry: str) -> bool:
    """Create the ``__pycache__`` of a directory entry that holds distributions (where its
    index is written) if it is missing, and say whether that was done.

    Creating it changes the entry's stamp, and so would the first module imported from there
    (Python writes its bytecode beside it): an index stamped before either would be stale for
    the next process.  Under a pycache prefix neither goes into the entry: nothing is made.
    """
    directory = os.path.join(entry or ".", "__pycache__")
    if writes_disabled() or bytecode_directory(entry) != directory or os.path.isdir(directory):
        return False
    try:
        os.mkdir(directory)
    except OSError:
        return False
    return True


_REASONS = {"changed": "changed in place", "denied": "cannot be looked into by this user"}


def _redeclared(contribution: Contribution) -> str:
    """Whether a distribution's ``entry_points.txt`` changed since its index was built
    (``"changed"``), or cannot be looked at by this user (``"denied"``); "" if neither."""
    distribution = contribution.distribution
    if distribution.declared_stamp is None:
        return ""
    try:
        st = os.stat(os.path.join(distribution.metadata, "entry_points.txt"))
    except PermissionError:
        return "denied"
    except (OSError, ValueError):
        return "changed"
    now = Stamp(st.st_mtime_ns, st.st_size)
    return "" if distribution.declared_stamp.matches(now, contribution.source.written_ns) \
        else "changed"


def _gate_holds(depends: tuple[tuple[str, str, Stamp | None], ...], view: GroupView) -> bool:
    """Whether every distribution a verdict depended on is found where it was then."""
    for key, entry, stamp in depends:
        source = view.locate(key)
        if source is None:
            if entry:
                return False
            continue
        if source.stamp is None or (source.entry, source.stamp) != (entry, stamp):
            return False
    return True
