"""Read algorithms of lakefs_server over a Store: object listing with delimiter/after/amount
(lakeFS pagination rules, directory markers), uncommitted and ref diffs, and the commit log.
Pages are produced by seeking through SQL range scans; never materialise a whole tree to cut one page.
"""
import heapq
import itertools

from store import ApiError, reword_not_found
from tree import prefix_end

SKIP_IN_PLACE = 64  # entries to step over inside a common prefix before re-seeking with a new query


def list_entries(store, db, view, prefix, delimiter, after, amount):
    """Returns ([(path, entry|None)], has_more); entry None marks a common prefix."""
    end = prefix_end(prefix)
    start = max(prefix, after)
    results = []
    it = store.scan(db, view, start, end)
    while len(results) <= amount:
        item = next(it, None)
        if item is None:
            break
        path, entry = item
        if path <= after:
            continue
        if delimiter:
            cut = path.find(delimiter, len(prefix))
            if cut >= 0:
                common = path[:cut + len(delimiter)]
                if common > after:
                    results.append((common, None))
                it = _skip_prefix(store, db, view, it, common, end)
                continue
        results.append((path, entry))
    return results[:amount], len(results) > amount


def _skip_prefix(store, db, view, it, common, end):
    """Continue after every key starting with common: step a little, then seek with a new scan."""
    for _ in range(SKIP_IN_PLACE):
        item = next(it, None)
        if item is None:
            return iter(())
        if not item[0].startswith(common):
            return itertools.chain([item], it)
    resume = prefix_end(common)
    if resume is None or (end is not None and resume >= end):
        return iter(())
    return store.scan(db, view, resume, end)


# --- diffs --------------------------------------------------------------------------------------

def uncommitted_changes(store, db, repo_id, branch, commit_id, start, end):
    """[(path, left, right)] for the staged changes of a branch that really differ from its commit."""
    mr_id = store.get_commit(db, repo_id, commit_id)["meta_range_id"]
    out = []
    for path, staged in store.scan_staging(db, repo_id, branch, start, end):
        committed = store.trees.get(db, mr_id, path)
        if staged is None and committed is None:
            continue
        if staged and committed and staged["identity"] == committed["identity"]:
            continue
        out.append((path, committed, staged))
    return out


def diff_refs(store, db, repo_id, left_ref, right_ref, kind, start, end):
    # lakeFS's words for a missing ref differ between its three-dot and two-dot diffs
    left = reword_not_found(lambda: store.resolve_commit(db, repo_id, left_ref),
                            "get commit by branch %s: not found" % left_ref if kind == "three_dot" else "not found")
    right_resolved = reword_not_found(lambda: store.resolve(db, repo_id, right_ref),
                                      "get commit by ref %s: not found" % right_ref if kind == "three_dot"
                                      else "not found")
    right = right_resolved.commit
    changes = store.trees.diff(db, left["meta_range_id"], right["meta_range_id"], start, end)
    if kind == "three_dot":
        # lakeFS Compare: the left..right diff, keeping only paths the right side changed since the
        # merge base; a path both sides changed (differently) is a conflict.
        base = store.merge_base(db, repo_id, right, left)
        if base is None:
            raise ApiError(400, "no merge base")
        kept = []
        for path, left_entry, right_entry in changes:
            base_entry = store.trees.get(db, base["meta_range_id"], path)
            if _identity(right_entry) == _identity(base_entry):
                continue
            conflict = _identity(left_entry) != _identity(base_entry)
            kept.append((path, left_entry, right_entry, "conflict") if conflict else (path, left_entry, right_entry))
        changes = kept
    if right_resolved.modifier == "$":
        # lakeFS: a right ref with '$' diffs the left commit against the right branch's staging area.
        staged = {p: s for p, s in store.scan_staging(db, repo_id, right_resolved.branch, start, end)}
        merged = {p: (l, r) for p, l, r in changes}
        for path, entry in staged.items():
            left_entry = store.trees.get(db, left["meta_range_id"], path)
            merged[path] = (left_entry, entry)
        changes = [(p, l, r) for p, (l, r) in sorted(merged.items())
                   if (l is None) != (r is None) or (l and r and l["identity"] != r["identity"])]
    return changes


def _identity(entry):
    return entry["identity"] if entry else None


def diff_page(changes, prefix, delimiter, after, amount, include_right_stats=False, removed_size=True):
    """Turn sorted [(path, left, right[, forced type])] into a lakeFS DiffList page.
    removed_size=False: a removal reports size_bytes 0, like lakeFS's uncommitted diff (diffBranch),
    whose removed entries carry the staging tombstone instead of the committed entry."""
    results = []
    last_common = None
    for change in changes:
        path, left, right = change[:3]
        if not path.startswith(prefix) or path <= after:
            continue
        if delimiter:
            cut = path.find(delimiter, len(prefix))
            if cut >= 0:
                common = path[:cut + len(delimiter)]
                if common != last_common and common > after:
                    results.append({"type": "prefix_changed", "path": common, "path_type": "common_prefix"})
                last_common = common
                if len(results) > amount:
                    break
                continue
        kind = change[3] if len(change) > 3 else "added" if left is None else "removed" if right is None else "changed"
        item = {"type": kind, "path": path, "path_type": "object",
                "size_bytes": right["size"] if right is not None else left["size"] if removed_size else 0}
        if include_right_stats and right is not None:
            item["right"] = {"checksum": right["checksum"], "mtime": right["mtime"],
                             "content_type": right["content_type"], "metadata": right["metadata"]}
        results.append(item)
        if len(results) > amount:
            break
    has_more = len(results) > amount
    results = results[:amount]
    return results, has_more


# --- commit log ---------------------------------------------------------------------------------

def _touches(store, db, repo_id, commit, objects, prefixes):
    parent_mr = ""
    if commit["parents"]:
        parent_mr = store.get_commit(db, repo_id, commit["parents"][0])["meta_range_id"]
    for path, _, _ in store.trees.diff(db, parent_mr, commit["meta_range_id"]):
        if path in objects or any(path.startswith(p) for p in prefixes):
            return True
    return False


def log_commits(store, db, repo_id, ref, after, amount, objects, prefixes, first_parent, since, stop_at):
    """Commits reachable from ref, newest generation first; returns (commits, has_more)."""
    start = store.resolve_commit(db, repo_id, ref)
    stop_id = store.resolve_commit(db, repo_id, stop_at)["id"] if stop_at else None
    heap, seen = [(-start["generation"], -start["creation_date"], start["id"])], {start["id"]}
    cache = {start["id"]: start}
    passed_after = not after
    results = []
    while heap:
        _, _, cid = heapq.heappop(heap)
        commit = cache.pop(cid)
        if since is not None and commit["creation_date"] < since:
            break
        parents = commit["parents"][:1] if first_parent else commit["parents"]
        for pid in parents:
            if pid not in seen:
                seen.add(pid)
                parent = store.get_commit(db, repo_id, pid)
                cache[pid] = parent
                heapq.heappush(heap, (-parent["generation"], -parent["creation_date"], pid))
        if passed_after:
            # With objects or prefixes, lakeFS (catalog.listCommitsWithPaths) looks only at commits of
            # one parent: never a merge commit, nor the first commit.
            if not (objects or prefixes) or (len(commit["parents"]) == 1
                                             and _touches(store, db, repo_id, commit, objects, prefixes)):
                results.append(commit)
                if len(results) > amount:
                    break
        elif cid == after:
            passed_after = True
        if cid == stop_id:
            break
    return results[:amount], len(results) > amount
