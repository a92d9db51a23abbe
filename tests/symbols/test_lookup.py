"""NameLookup: frozen for the cache, an overlay for edits, the same answers as the dict it was made from."""

from __future__ import annotations

import marshal

from rlm_mcp.symbols.lookup import NameLookup

BY_KEY = {
    "run": [("a.py", 0), ("a.py", 40), ("b.py", 7)],
    "Shared": [("a.py", 12)],
    "émoji_名前": [("ü.py", 3)],
    "z": [("c.py", 1)],
}


def test_frozen_and_thawed_it_answers_as_the_dict_did() -> None:
    thawed = NameLookup(marshal.loads(marshal.dumps(NameLookup.of(BY_KEY).frozen())))
    for key, rows in BY_KEY.items():
        assert thawed.get(key) == rows
    assert thawed.get("absent") == [] and thawed.get("") == [] and thawed.get("zz") == []


def test_edits_go_to_an_overlay_and_the_next_freeze_merges_them_in_order() -> None:
    lookup = NameLookup(NameLookup.of(BY_KEY).frozen())
    twin = lookup.copy()
    lookup.put("run", [("b.py", 7)])  # a file's definitions removed
    lookup.put("Shared", [])  # a key gone
    lookup.put("aaa", [("n.py", 0)])  # keys before, between and after the frozen ones
    lookup.put("m", [("n.py", 5)])
    lookup.put("zzz", [("n.py", 9)])
    again = NameLookup(lookup.frozen())
    assert [again.get(key) for key in ("run", "Shared", "aaa", "m", "zzz", "z")] == [
        [("b.py", 7)], [], [("n.py", 0)], [("n.py", 5)], [("n.py", 9)], [("c.py", 1)]]
    assert twin.get("run") == BY_KEY["run"] and twin.get("aaa") == []  # the copy did not move
    assert NameLookup(again.frozen()).get("m") == [("n.py", 5)]  # frozen as is when nothing changed since
