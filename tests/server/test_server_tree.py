"""Unit test of lakefs_server's snapshot trees (tree.py): random commits against a dict model,
checking scans, point lookups, diffs and that unchanged ranges are shared between snapshots."""
import os
import random
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lakefs_server"))

import tree  # noqa: E402


def entry(value):
    return tree.make_entry("s3://b/data/%032x" % value, "%032x" % value, value, 1, "text/plain", {})


def test_random_commits_match_a_dict_model():
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(tree.SCHEMA)
    trees = tree.Trees()
    rng = random.Random(7)
    keys = ["k%05d/%s" % (rng.randrange(3000), rng.choice("abc")) for _ in range(4000)]
    model, mr_id, history = {}, tree.EMPTY_TREE, []
    for step in range(40):
        changes = {}
        for _ in range(rng.choice([1, 5, 50, 800])):
            key = rng.choice(keys)
            changes[key] = None if (key in model and rng.random() < 0.3) else entry(rng.randrange(10 ** 6))
        new_mr = trees.apply(db, mr_id, sorted(changes.items()))
        new_model = dict(model)
        for key, value in changes.items():
            if value is None:
                new_model.pop(key, None)
            else:
                new_model[key] = value
        scanned = list(trees.scan(db, new_mr))
        assert [k for k, _ in scanned] == sorted(new_model)
        assert all(e["identity"] == new_model[k]["identity"] for k, e in scanned)
        probe = rng.choice(keys)
        got = trees.get(db, new_mr, probe)
        assert (got and got["identity"]) == (new_model.get(probe) and new_model[probe]["identity"])
        diff = trees.diff(db, mr_id, new_mr)
        expected = sorted(k for k in set(model) | set(new_model)
                          if (model.get(k) or {}).get("identity") != (new_model.get(k) or {}).get("identity"))
        assert [d[0] for d in diff] == expected
        window = list(trees.scan(db, new_mr, "k01000", "k02000"))
        assert [k for k, _ in window] == sorted(k for k in new_model if "k01000" <= k < "k02000")
        history.append((mr_id, new_mr, len(changes)))
        model, mr_id = new_model, new_mr
    assert trees.apply(db, mr_id, []) == mr_id
    small = [(old, new) for old, new, n in history if n == 1]
    for old, new in small:
        shared = {r[0] for r in trees.ranges(db, old)} & {r[0] for r in trees.ranges(db, new)}
        assert len(shared) >= len(trees.ranges(db, new)) - 3


def test_prefix_end():
    assert tree.prefix_end("a/") == "a0"
    assert tree.prefix_end("") is None
    assert tree.prefix_end("a\U0010ffff") == "b"
