"""The version tree of a story, rebuilt from asset provenance (each turn's parent is the turn before).

A co-writing session is a tree, not a list: branching from a turn, or regenerating it, makes a
sibling. Nothing is stored here; the asset store already records each result's parent, and this
rebuilds the tree (roots first, children in creation order) for display and for walking a branch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


@dataclass
class Node:
    id: str
    parent: str | None
    mode: str = ""
    children: list["Node"] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterable[tuple[int, "Node"]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


def build(records: Iterable[tuple[str, str | None, str]]) -> list[Node]:
    """Roots of the forest from (asset id, parent id or None, mode) records in creation order.

    A parent that is not among the records (deleted, or another user's) makes its child a root.
    """
    nodes: dict[str, Node] = {}
    order: list[Node] = []
    for asset_id, parent, mode in records:
        if asset_id in nodes:
            raise ValueError(f"asset {asset_id!r} appears twice")
        node = Node(asset_id, parent or None, mode)
        nodes[asset_id] = node
        order.append(node)
    roots: list[Node] = []
    for node in order:
        parent = nodes.get(node.parent) if node.parent else None
        (parent.children if parent is not None else roots).append(node)
    return roots


def lineage(records: Iterable[tuple[str, str | None, str]], leaf: str) -> list[str]:
    """Asset ids from the root down to `leaf`: the branch a writer is on."""
    parents = {a: p for a, p, _m in records}
    if leaf not in parents:
        raise KeyError(leaf)
    path, seen = [leaf], {leaf}
    while parents.get(path[-1]) in parents and parents[path[-1]] not in seen:
        path.append(parents[path[-1]])  # type: ignore[arg-type]
        seen.add(path[-1])
    return list(reversed(path))
