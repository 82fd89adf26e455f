"""Committed snapshots for lakefs_server: content-addressed ranges and metaranges in SQLite.
A metarange is an ordered list of immutable ranges (sorted runs of entries); a commit that
touches a few keys rewrites only the ranges holding them, so 20k-object trees stay cheap.
Never mutate a stored range or metarange (their ids are hashes of their content), and never
load a whole tree into memory to answer one page.
"""
import bisect
import hashlib
import json

# The repository's first commit has no metarange at all: id "" (lakeFS: graveler.NewCommit leaves
# MetaRangeID empty and metaRangeManager.NewMetaRangeIterator reads "" as the empty tree). Every
# metarange a commit or merge writes has a content hash id, the empty one included (lakeFS's
# committedManager.Commit always closes a metarange writer), so "emptied" differs from "never filled":
# merging a commit that emptied the tree is a change (committedManager.Merge compares ids).
EMPTY_TREE = ""
RANGE_HARD_CAP = 1024  # entries; a content-defined boundary usually comes much earlier
SCAN_BATCH = 256

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    range_id TEXT NOT NULL, path TEXT NOT NULL, address TEXT NOT NULL, checksum TEXT NOT NULL,
    size INTEGER NOT NULL, mtime INTEGER NOT NULL, content_type TEXT NOT NULL,
    metadata TEXT NOT NULL, identity TEXT NOT NULL,
    PRIMARY KEY (range_id, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metaranges (
    mr_id TEXT NOT NULL, seq INTEGER NOT NULL, range_id TEXT NOT NULL,
    min_path TEXT NOT NULL, max_path TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (mr_id, seq)) WITHOUT ROWID;
"""

ENTRY_COLUMNS = "path, address, checksum, size, mtime, content_type, metadata, identity"


def identity_of(entry):
    """What makes two entries 'the same' for diff/merge/no-changes (mtime deliberately excluded)."""
    raw = json.dumps([entry["address"], entry["checksum"], entry["size"], entry["content_type"],
                      sorted(entry["metadata"].items())], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def make_entry(address, checksum, size, mtime, content_type, metadata):
    entry = {"address": address, "checksum": checksum, "size": int(size), "mtime": int(mtime),
             "content_type": content_type or "application/octet-stream",
             "metadata": dict(metadata or {})}
    entry["identity"] = identity_of(entry)
    return entry


def row_to_entry(row):
    """row = (path, address, checksum, size, mtime, content_type, metadata, identity)."""
    return row[0], {"address": row[1], "checksum": row[2], "size": row[3], "mtime": row[4],
                    "content_type": row[5], "metadata": json.loads(row[6]), "identity": row[7]}


def prefix_end(prefix):
    """Smallest string greater than every string starting with prefix (None: unbounded)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


def _is_boundary(path):
    return hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=2).digest()[0] % 128 == 0


class Trees:
    """Reads and writes metaranges. Every method takes the caller's sqlite connection."""

    def __init__(self):
        self._range_cache = {}

    def ranges(self, db, mr_id):
        """[(range_id, min_path, max_path, count)] of a metarange, cached (immutable)."""
        return self._ranges_and_keys(db, mr_id)[0]

    def _ranges_and_keys(self, db, mr_id):
        if mr_id == EMPTY_TREE:
            return [], []
        cached = self._range_cache.get(mr_id)
        if cached is None:
            rows = db.execute("SELECT range_id, min_path, max_path, count FROM metaranges "
                              "WHERE mr_id=? ORDER BY seq", (mr_id,)).fetchall()
            if not rows:
                return [], []
            if len(self._range_cache) > 4096:
                self._range_cache.clear()
            cached = (rows, [r[2] for r in rows])
            self._range_cache[mr_id] = cached
        return cached


    def get(self, db, mr_id, path):
        ranges, max_keys = self._ranges_and_keys(db, mr_id)
        idx = bisect.bisect_left(max_keys, path)
        if idx >= len(ranges) or path < ranges[idx][1]:
            return None
        row = db.execute("SELECT " + ENTRY_COLUMNS + " FROM entries WHERE range_id=? AND path=?",
                         (ranges[idx][0], path)).fetchone()
        return row_to_entry(row)[1] if row else None

    def scan(self, db, mr_id, start="", end=None, batch=SCAN_BATCH):
        """Yield (path, entry) for start <= path < end in byte order, batch rows per query."""
        ranges, max_keys = self._ranges_and_keys(db, mr_id)
        idx = bisect.bisect_left(max_keys, start)
        while idx < len(ranges):
            range_id, min_path, _, _ = ranges[idx]
            if end is not None and min_path >= end:
                return
            cursor = start
            inclusive = True
            while True:
                op = ">=" if inclusive else ">"
                sql = ("SELECT " + ENTRY_COLUMNS + " FROM entries WHERE range_id=? AND path" + op + "?"
                       + (" AND path<?" if end is not None else "") + " ORDER BY path LIMIT ?")
                args = (range_id, cursor) + ((end,) if end is not None else ()) + (batch,)
                rows = db.execute(sql, args).fetchall()
                for row in rows:
                    yield row_to_entry(row)
                if len(rows) < batch:
                    break
                cursor, inclusive = rows[-1][0], False
            idx += 1

    def _load_range(self, db, range_id):
        rows = db.execute("SELECT " + ENTRY_COLUMNS + " FROM entries WHERE range_id=? ORDER BY path",
                          (range_id,)).fetchall()
        return [row_to_entry(r) for r in rows]

    def _write_range(self, db, items):
        digest = hashlib.sha256()
        for path, entry in items:
            digest.update(path.encode("utf-8", "surrogatepass") + b"\0" + entry["identity"].encode() + b"\n")
        range_id = digest.hexdigest()
        exists = db.execute("SELECT 1 FROM entries WHERE range_id=? LIMIT 1", (range_id,)).fetchone()
        if not exists:
            db.executemany(
                "INSERT OR IGNORE INTO entries (range_id, " + ENTRY_COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?)",
                [(range_id, p, e["address"], e["checksum"], e["size"], e["mtime"], e["content_type"],
                  json.dumps(e["metadata"], sort_keys=True), e["identity"]) for p, e in items])
        return (range_id, items[0][0], items[-1][0], len(items))

    def _write_metarange(self, db, ranges):
        mr_id = hashlib.sha256("".join(r[0] for r in ranges).encode()).hexdigest()
        if not self.ranges(db, mr_id):
            db.executemany("INSERT OR IGNORE INTO metaranges (mr_id, seq, range_id, min_path, max_path, count) "
                           "VALUES (?,?,?,?,?,?)", [(mr_id, i) + tuple(r) for i, r in enumerate(ranges)])
            self._range_cache.pop(mr_id, None)
        return mr_id

    def _chunk(self, db, items, out, final):
        """Cut items at content-defined boundaries; returns the unterminated tail unless final."""
        start = 0
        for i, (path, _) in enumerate(items):
            if _is_boundary(path) or i + 1 - start >= RANGE_HARD_CAP:
                out.append(self._write_range(db, items[start:i + 1]))
                start = i + 1
        tail = items[start:]
        if final and tail:
            out.append(self._write_range(db, tail))
            return []
        return tail

    def apply(self, db, mr_id, changes):
        """New metarange = mr_id with changes applied; changes: sorted [(path, entry|None)]."""
        ranges, max_keys = self._ranges_and_keys(db, mr_id)
        if not changes:
            return mr_id
        per_range = {}
        for path, entry in changes:
            idx = min(bisect.bisect_left(max_keys, path), max(len(ranges) - 1, 0))
            per_range.setdefault(idx, []).append((path, entry))
        out, carry = [], []
        for idx in range(max(len(ranges), 1)):
            touched = per_range.get(idx)
            if not touched and not carry:
                out.append(ranges[idx])
                continue
            base = self._load_range(db, ranges[idx][0]) if ranges else []
            merged = carry + _merge_sorted(base, touched or [])
            carry = self._chunk(db, merged, out, final=False)
        if carry:
            self._chunk(db, carry, out, final=True)
        if [tuple(r) for r in out] == [tuple(r) for r in ranges]:
            return mr_id  # nothing really changed (e.g. removing a path that is not there)
        return self._write_metarange(db, out)

    def written(self, db, mr_id):
        """The id a metarange writer gives this tree: the first commit's "" becomes the written
        empty tree's hash id; any other id is already a written metarange."""
        return self._write_metarange(db, []) if mr_id == EMPTY_TREE else mr_id

    def build(self, db, items):
        """Metarange holding exactly items (sorted [(path, entry)])."""
        out = []
        self._chunk(db, list(items), out, final=True)
        return self._write_metarange(db, out)

    def diff(self, db, left_mr, right_mr, start="", end=None):
        """Sorted [(path, left_entry|None, right_entry|None)] where the two trees differ.
        Ranges present in both trees hold identical entries and are skipped without reading."""
        if left_mr == right_mr:
            return []
        left_ranges, right_ranges = self.ranges(db, left_mr), self.ranges(db, right_mr)
        common = {r[0] for r in left_ranges} & {r[0] for r in right_ranges}
        left = self._entries_outside(db, left_ranges, common, start, end)
        right = self._entries_outside(db, right_ranges, common, start, end)
        result, i, j = [], 0, 0
        while i < len(left) or j < len(right):
            if j >= len(right) or (i < len(left) and left[i][0] < right[j][0]):
                result.append((left[i][0], left[i][1], None))
                i += 1
            elif i >= len(left) or right[j][0] < left[i][0]:
                result.append((right[j][0], None, right[j][1]))
                j += 1
            else:
                if left[i][1]["identity"] != right[j][1]["identity"]:
                    result.append((left[i][0], left[i][1], right[j][1]))
                i += 1
                j += 1
        return result

    def _entries_outside(self, db, ranges, common, start, end):
        items = []
        for range_id, min_path, max_path, _ in ranges:
            if range_id in common or max_path < start or (end is not None and min_path >= end):
                continue
            sql = "SELECT " + ENTRY_COLUMNS + " FROM entries WHERE range_id=? AND path>=?"
            args = [range_id, start]
            if end is not None:
                sql += " AND path<?"
                args.append(end)
            items.extend(row_to_entry(r) for r in db.execute(sql + " ORDER BY path", args))
        return items


def _merge_sorted(base, changes):
    """Apply sorted changes [(path, entry|None)] to sorted base [(path, entry)]."""
    out, i = [], 0
    for path, entry in changes:
        while i < len(base) and base[i][0] < path:
            out.append(base[i])
            i += 1
        if i < len(base) and base[i][0] == path:
            i += 1
        if entry is not None:
            out.append((path, entry))
    out.extend(base[i:])
    return out
