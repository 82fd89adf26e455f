"""Metadata store of lakefs_server (SQLite in DATA_DIR/lakefs.db): repositories, branches, tags,
commits, staging areas and ref resolution, with lakeFS (graveler) semantics and error texts.
Every mutation runs under one process-wide write lock inside an IMMEDIATE transaction; reads
run inside a read transaction so a page never sees half a commit. Never talk HTTP here.
"""
import contextlib
import hashlib
import heapq
import json
import os
import re
import secrets
import sqlite3
import threading
import time

from tree import EMPTY_TREE, SCHEMA as TREE_SCHEMA, Trees, make_entry, prefix_end, row_to_entry

REPO_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
BRANCH_ID_RE = re.compile(r"^\w[-\w]*$", re.ASCII)
TAG_ID_RE = re.compile(r"^[^\s~^:?*\[\\]+$")
HASH_RE = re.compile(r"^[a-fA-F0-9]{1,64}$")
FULL_HASH_RE = re.compile(r"^[a-f0-9]{64}$")
FIRST_COMMIT_MSG = "Repository created"
MERGE_STRATEGY_KEY = ".lakefs.merge.strategy"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
    id TEXT PRIMARY KEY, namespace TEXT NOT NULL, default_branch TEXT NOT NULL,
    creation_date INTEGER NOT NULL, read_only INTEGER NOT NULL, storage_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS branches (
    repo TEXT NOT NULL, name TEXT NOT NULL, commit_id TEXT NOT NULL, hidden INTEGER NOT NULL,
    PRIMARY KEY (repo, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL, name TEXT NOT NULL, commit_id TEXT NOT NULL,
    PRIMARY KEY (repo, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
    repo TEXT NOT NULL, id TEXT NOT NULL, parents TEXT NOT NULL, committer TEXT NOT NULL,
    message TEXT NOT NULL, creation_date INTEGER NOT NULL, mr_id TEXT NOT NULL,
    metadata TEXT NOT NULL, generation INTEGER NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (repo, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staging (
    repo TEXT NOT NULL, branch TEXT NOT NULL, path TEXT NOT NULL, tombstone INTEGER NOT NULL,
    address TEXT NOT NULL, checksum TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
    content_type TEXT NOT NULL, metadata TEXT NOT NULL, identity TEXT NOT NULL,
    PRIMARY KEY (repo, branch, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mpu (
    upload_id TEXT PRIMARY KEY, repo TEXT NOT NULL, branch TEXT NOT NULL, path TEXT NOT NULL,
    oid TEXT NOT NULL, created INTEGER NOT NULL);
"""
STAGING_COLUMNS = "path, address, checksum, size, mtime, content_type, metadata, identity, tombstone"


class ApiError(Exception):
    """An error answered as {"message": ...} with an HTTP status (body may add fields)."""

    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class Resolved:
    """A resolved ref: kind is branch/tag/commit; modifier None, '@' (committed) or '$' (staging)."""

    def __init__(self, kind, commit, branch=None, modifier=None):
        self.kind, self.commit, self.branch, self.modifier = kind, commit, branch, modifier

    @property
    def commit_id(self):
        return self.commit["id"]


class View:
    """What a read sees: a committed tree plus, for a branch, its staging area."""

    def __init__(self, repo, mr_id, branch=None, staging_only=False):
        self.repo, self.mr_id, self.branch, self.staging_only = repo, mr_id, branch, staging_only


def commit_from_row(row):
    return {"id": row[0], "parents": json.loads(row[1]), "committer": row[2], "message": row[3],
            "creation_date": row[4], "meta_range_id": row[5], "metadata": json.loads(row[6]),
            "generation": row[7], "version": row[8]}


def staging_row_to_entry(row):
    path, entry = row_to_entry(row[:8])
    return path, (None if row[8] else entry)


def parse_ref(ref):
    """'main~2^1' -> ('main', [('~', 2), ('^', 1)]); raises ApiError(400) on a malformed ref."""
    match = re.match(r"^([^~^@$]+)(.*)$", ref or "")
    if not match:
        raise ApiError(400, "ref: invalid value: validation error")
    base, rest, mods = match.group(1), match.group(2), []
    if rest in ("@", "$"):
        return base, [(rest, 0)]
    for op, digits in re.findall(r"([~^])(\d*)", rest):
        mods.append((op, int(digits) if digits else 1))
    if "".join(op + str(n) for op, n in mods) != re.sub(r"([~^])(?=[~^]|$)", r"\g<1>1", rest):
        raise ApiError(400, "ref: invalid value: validation error")
    return base, mods


class Store:
    def __init__(self, data_dir):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "lakefs.db")
        self.lock = threading.RLock()
        self.trees = Trees()
        self._local = threading.local()
        db = self.db()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA + TREE_SCHEMA)
        with self.write() as db:
            for key, value in (("secret", secrets.token_hex(32)), ("created", str(int(time.time())))):
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        with self.read() as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        self.secret = bytes.fromhex(meta["secret"])
        self.created = int(meta["created"])

    def db(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def read(self):
        db = self.db()
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextlib.contextmanager
    def write(self):
        with self.lock:
            db = self.db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                self.trees._range_cache.clear()
                raise
            db.execute("COMMIT")

    # --- repositories -------------------------------------------------------------------------
    @staticmethod
    def repo_dict(row):
        return {"id": row[0], "storage_namespace": row[1], "default_branch": row[2],
                "creation_date": row[3], "read_only": bool(row[4]), "storage_id": row[5]}

    def get_repo(self, db, repo_id):
        row = db.execute("SELECT id, namespace, default_branch, creation_date, read_only, storage_id "
                         "FROM repos WHERE id=?", (repo_id,)).fetchone()
        if not row:
            raise ApiError(404, "repository not found")
        return self.repo_dict(row)

    def list_repos(self, db, prefix, after, amount, search):
        rows = db.execute("SELECT id, namespace, default_branch, creation_date, read_only, storage_id "
                          "FROM repos WHERE id>? AND id>=? ORDER BY id", (after, prefix)).fetchall()
        rows = [r for r in rows if r[0].startswith(prefix) and (not search or search in r[0])]
        return [self.repo_dict(r) for r in rows[:amount]], len(rows) > amount

    def create_repo(self, repo_id, namespace, default_branch, read_only, bare, storage_id=""):
        if not REPO_ID_RE.match(repo_id or ""):
            raise ApiError(400, "repository id: invalid value: validation error")
        if not BRANCH_ID_RE.match(default_branch):
            raise ApiError(400, "branch id: invalid value: validation error")
        with self.write() as db:
            if db.execute("SELECT 1 FROM repos WHERE id=?", (repo_id,)).fetchone():
                raise ApiError(409, "error creating repository: not unique")
            now = int(time.time())
            db.execute("INSERT INTO repos (id, namespace, default_branch, creation_date, read_only, storage_id) "
                       "VALUES (?,?,?,?,?,?)", (repo_id, namespace, default_branch, now, int(read_only), storage_id))
            if not bare:
                commit_id = self._add_commit(db, repo_id, [], "", FIRST_COMMIT_MSG, now, EMPTY_TREE, {}, 1)
                db.execute("INSERT INTO branches (repo, name, commit_id, hidden) VALUES (?,?,?,0)",
                           (repo_id, default_branch, commit_id))
            return self.get_repo(db, repo_id)

    def delete_repo(self, repo_id, force):
        with self.write() as db:
            repo = self.get_repo(db, repo_id)
            if repo["read_only"] and not force:
                raise ApiError(403, "repository is read-only")
            db.execute("DELETE FROM repos WHERE id=?", (repo_id,))
            for table in ("branches", "tags", "commits", "staging", "mpu"):
                db.execute("DELETE FROM %s WHERE repo=?" % table, (repo_id,))

    # --- commits ------------------------------------------------------------------------------
    def get_commit(self, db, repo_id, commit_id):
        row = db.execute("SELECT id, parents, committer, message, creation_date, mr_id, metadata, generation, "
                         "version FROM commits WHERE repo=? AND id=?", (repo_id, commit_id)).fetchone()
        if not row:
            raise ApiError(404, "commit not found")
        return commit_from_row(row)

    def _add_commit(self, db, repo_id, parents, committer, message, date, mr_id, metadata, generation):
        body = json.dumps(["commit:v1", committer, message, mr_id, int(date), sorted(metadata.items()), parents])
        commit_id = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        db.execute("INSERT OR IGNORE INTO commits (repo, id, parents, committer, message, creation_date, mr_id, "
                   "metadata, generation, version) VALUES (?,?,?,?,?,?,?,?,?,1)",
                   (repo_id, commit_id, json.dumps(parents), committer, message, int(date), mr_id,
                    json.dumps(metadata), generation))
        return commit_id

    def _commit_by_prefix(self, db, repo_id, prefix):
        prefix = prefix.lower()
        rows = db.execute("SELECT id FROM commits WHERE repo=? AND id>=? AND id<? LIMIT 2",
                          (repo_id, prefix, prefix_end(prefix))).fetchall()
        if len(rows) > 1:
            raise ApiError(404, "reference is ambiguous: not found")
        return rows[0][0] if rows else None

    def resolve(self, db, repo_id, ref):
        """Resolution order: full commit id, branch, tag, unique commit-id prefix; then modifiers."""
        base, mods = parse_ref(ref)
        kind, branch, commit_id = None, None, None
        if FULL_HASH_RE.match(base) and db.execute("SELECT 1 FROM commits WHERE repo=? AND id=?",
                                                   (repo_id, base)).fetchone():
            kind, commit_id = "commit", base
        if kind is None:
            row = db.execute("SELECT commit_id FROM branches WHERE repo=? AND name=?", (repo_id, base)).fetchone()
            if row:
                kind, branch, commit_id = "branch", base, row[0]
        if kind is None:
            row = db.execute("SELECT commit_id FROM tags WHERE repo=? AND name=?", (repo_id, base)).fetchone()
            if row:
                kind, commit_id = "tag", row[0]
        if kind is None and HASH_RE.match(base):
            commit_id = self._commit_by_prefix(db, repo_id, base)
            kind = "commit" if commit_id else None
        if kind is None:
            raise ApiError(404, "ref %s: not found" % ref if mods else "%s: not found" % ref)
        commit = self.get_commit(db, repo_id, commit_id)
        if mods and mods[0][0] in "@$":
            if kind != "branch":
                raise ApiError(400, "ref: invalid value: validation error")
            return Resolved("branch", commit, branch, mods[0][0])
        for op, n in mods:
            kind, branch = "commit", None
            if op == "~":
                for _ in range(n):
                    if not commit["parents"]:
                        raise ApiError(404, "commit not found")
                    commit = self.get_commit(db, repo_id, commit["parents"][0])
            elif n > 0:
                if n > len(commit["parents"]):
                    raise ApiError(404, "commit not found")
                commit = self.get_commit(db, repo_id, commit["parents"][n - 1])
        return Resolved(kind, commit, branch)

    def resolve_commit(self, db, repo_id, ref):
        resolved = self.resolve(db, repo_id, ref)
        if resolved.modifier == "$":
            raise ApiError(400, "reference to staging area with $ is not a commit")
        return resolved.commit

    def view(self, db, repo_id, ref):
        self.get_repo(db, repo_id)
        resolved = self.resolve(db, repo_id, ref)
        mr_id = resolved.commit["meta_range_id"]
        if resolved.kind == "branch" and resolved.modifier is None:
            return View(repo_id, mr_id, resolved.branch)
        if resolved.modifier == "$":
            return View(repo_id, EMPTY_TREE, resolved.branch, staging_only=True)
        return View(repo_id, mr_id)

    def merge_base(self, db, repo_id, a, b):
        """Nearest common ancestor, walking both histories by descending generation."""
        flags, heap, seen = {}, [], set()
        for commit, flag in ((a, 1), (b, 2)):
            flags[commit["id"]] = flags.get(commit["id"], 0) | flag
            heapq.heappush(heap, (-commit["generation"], commit["id"]))
        commits = {a["id"]: a, b["id"]: b}
        while heap:
            _, cid = heapq.heappop(heap)
            if cid in seen:
                continue
            seen.add(cid)
            if flags[cid] == 3:
                return commits[cid]
            for parent_id in commits[cid]["parents"]:
                parent = commits.get(parent_id) or self.get_commit(db, repo_id, parent_id)
                commits[parent_id] = parent
                flags[parent_id] = flags.get(parent_id, 0) | flags[cid]
                if parent_id in seen:
                    seen.discard(parent_id)
                heapq.heappush(heap, (-parent["generation"], parent_id))
        return None

    # --- branches and tags --------------------------------------------------------------------
    def branch_commit(self, db, repo_id, branch):
        """Commit id of a branch for a write; 400 for an invalid name, 404 when missing."""
        if not BRANCH_ID_RE.match(branch or ""):
            raise ApiError(400, "branch id: invalid value: validation error")
        row = db.execute("SELECT commit_id FROM branches WHERE repo=? AND name=?", (repo_id, branch)).fetchone()
        if not row:
            raise ApiError(404, "branch not found")
        return row[0]

    def writable_branch(self, db, repo_id, branch, force=False):
        repo = self.get_repo(db, repo_id)
        commit_id = self.branch_commit(db, repo_id, branch)
        if repo["read_only"] and not force:
            raise ApiError(403, "cannot write to read-only repository")
        return repo, commit_id

    def list_refs(self, db, table, repo_id, prefix, after, amount, show_hidden=True):
        self.get_repo(db, repo_id)
        sql = "SELECT name, commit_id FROM %s WHERE repo=? AND name>? AND name>=?" % table
        if table == "branches" and not show_hidden:
            sql += " AND hidden=0"
        args = [repo_id, after, prefix]
        end = prefix_end(prefix)
        if end is not None:
            sql += " AND name<?"
            args.append(end)
        rows = db.execute(sql + " ORDER BY name LIMIT ?", args + [amount + 1]).fetchall()
        return [{"id": r[0], "commit_id": r[1]} for r in rows[:amount]], len(rows) > amount

    def create_branch(self, repo_id, name, source, force=False, hidden=False):
        with self.write() as db:
            repo = self.get_repo(db, repo_id)
            if not BRANCH_ID_RE.match(name or ""):
                raise ApiError(400, "branch id: invalid value: validation error")
            if repo["read_only"] and not force:
                raise ApiError(403, "cannot write to read-only repository")
            try:
                commit = self.resolve_commit(db, repo_id, source)
            except ApiError as err:  # lakeFS (graveler.CreateBranch) names the source
                if err.status != 404:
                    raise
                raise ApiError(404, "source reference '%s': not found" % source)
            if db.execute("SELECT 1 FROM branches WHERE repo=? AND name=?", (repo_id, name)).fetchone():
                raise ApiError(409, "branch already exists: not unique")
            db.execute("INSERT INTO branches (repo, name, commit_id, hidden) VALUES (?,?,?,?)",
                       (repo_id, name, commit["id"], int(bool(hidden))))
            return commit["id"]

    def get_branch(self, db, repo_id, name):
        self.get_repo(db, repo_id)
        return {"id": name, "commit_id": self.branch_commit(db, repo_id, name)}

    def delete_branch(self, repo_id, name, force=False):
        with self.write() as db:
            repo, _ = self.writable_branch(db, repo_id, name, force)
            if name == repo["default_branch"]:
                raise ApiError(403, "cannot delete repository default branch")
            db.execute("DELETE FROM branches WHERE repo=? AND name=?", (repo_id, name))
            db.execute("DELETE FROM staging WHERE repo=? AND branch=?", (repo_id, name))

    def create_tag(self, repo_id, tag, ref, force=False):
        with self.write() as db:
            repo = self.get_repo(db, repo_id)
            if not TAG_ID_RE.match(tag or ""):
                raise ApiError(400, "tag id: invalid value: validation error")
            if repo["read_only"] and not force:
                raise ApiError(403, "cannot write to read-only repository")
            commit = self.resolve_commit(db, repo_id, ref)
            exists = db.execute("SELECT 1 FROM tags WHERE repo=? AND name=?", (repo_id, tag)).fetchone()
            if exists and not force:
                raise ApiError(409, "tag already exists: not unique")
            db.execute("INSERT OR REPLACE INTO tags (repo, name, commit_id) VALUES (?,?,?)",
                       (repo_id, tag, commit["id"]))
            return {"id": tag, "commit_id": commit["id"]}

    def get_tag(self, db, repo_id, tag):
        self.get_repo(db, repo_id)
        row = db.execute("SELECT commit_id FROM tags WHERE repo=? AND name=?", (repo_id, tag)).fetchone()
        if not row:
            raise ApiError(404, "tag not found")
        return {"id": tag, "commit_id": row[0]}

    def delete_tag(self, repo_id, tag, force=False):
        with self.write() as db:
            repo = self.get_repo(db, repo_id)
            if repo["read_only"] and not force:
                raise ApiError(403, "cannot write to read-only repository")
            if not db.execute("DELETE FROM tags WHERE repo=? AND name=?", (repo_id, tag)).rowcount:
                raise ApiError(404, "tag not found")

    # --- objects ------------------------------------------------------------------------------
    def staged(self, db, repo_id, branch, path):
        """('absent'|'entry'|'tombstone', entry)."""
        row = db.execute("SELECT " + STAGING_COLUMNS + " FROM staging WHERE repo=? AND branch=? AND path=?",
                         (repo_id, branch, path)).fetchone()
        if not row:
            return "absent", None
        _, entry = staging_row_to_entry(row)
        return ("tombstone", None) if entry is None else ("entry", entry)

    def get_entry(self, db, view, path):
        if view.branch is not None:
            state, entry = self.staged(db, view.repo, view.branch, path)
            if state != "absent" or view.staging_only:
                return entry
        return self.trees.get(db, view.mr_id, path)

    def scan_staging(self, db, repo_id, branch, start, end, batch=256):
        cursor, op = start, ">="
        while True:
            sql = "SELECT " + STAGING_COLUMNS + " FROM staging WHERE repo=? AND branch=? AND path" + op + "?"
            args = [repo_id, branch, cursor]
            if end is not None:
                sql += " AND path<?"
                args.append(end)
            rows = db.execute(sql + " ORDER BY path LIMIT ?", args + [batch]).fetchall()
            for row in rows:
                yield staging_row_to_entry(row)
            if len(rows) < batch:
                return
            cursor, op = rows[-1][0], ">"

    def scan(self, db, view, start="", end=None):
        """(path, entry) visible in view, in byte order, start <= path < end."""
        committed = self.trees.scan(db, view.mr_id, start, end)
        if view.branch is None:
            yield from committed
            return
        staged = self.scan_staging(db, view.repo, view.branch, start, end)
        c, s = next(committed, None), next(staged, None)
        while c is not None or s is not None:
            if s is None or (c is not None and c[0] < s[0]):
                yield c
                c = next(committed, None)
                continue
            if c is not None and c[0] == s[0]:
                c = next(committed, None)
            if s[1] is not None:
                yield s
            s = next(staged, None)

    def put_entry(self, db, repo_id, branch, path, entry):
        e = entry
        db.execute("INSERT OR REPLACE INTO staging (repo, branch, " + STAGING_COLUMNS + ") "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,0)",
                   (repo_id, branch, path, e["address"], e["checksum"], e["size"], e["mtime"], e["content_type"],
                    json.dumps(e["metadata"], sort_keys=True), e["identity"]))

    def delete_entry(self, db, repo_id, branch, commit_id, path):
        mr_id = self.get_commit(db, repo_id, commit_id)["meta_range_id"]
        if self.trees.get(db, mr_id, path) is None:
            db.execute("DELETE FROM staging WHERE repo=? AND branch=? AND path=?", (repo_id, branch, path))
        else:
            db.execute("INSERT OR REPLACE INTO staging (repo, branch, path, tombstone, address, checksum, size, "
                       "mtime, content_type, metadata, identity) VALUES (?,?,?,1,'','',0,0,'','{}','')",
                       (repo_id, branch, path))

    def staged_changes(self, db, repo_id, branch):
        return list(self.scan_staging(db, repo_id, branch, "", None))

    def is_dirty(self, db, repo_id, branch, commit_id):
        mr_id = self.get_commit(db, repo_id, commit_id)["meta_range_id"]
        for path, entry in self.scan_staging(db, repo_id, branch, "", None):
            current = self.trees.get(db, mr_id, path)
            if (entry is None) != (current is None) or (entry and entry["identity"] != current["identity"]):
                return True
        return False

    # --- commit, merge, reset -----------------------------------------------------------------
    def commit(self, repo_id, branch, committer, message, metadata, date=None, allow_empty=False, force=False):
        with self.write() as db:
            _, head_id = self.writable_branch(db, repo_id, branch, force)
            head = self.get_commit(db, repo_id, head_id)
            new_mr = self.trees.apply(db, head["meta_range_id"], self.staged_changes(db, repo_id, branch))
            if new_mr == head["meta_range_id"]:
                if not allow_empty:
                    raise ApiError(400, "commit: no changes")
                new_mr = self.trees.written(db, new_mr)  # lakeFS always writes the commit's metarange
            when = int(date) if date is not None else int(time.time())
            commit_id = self._add_commit(db, repo_id, [head_id], committer, message, when, new_mr,
                                         dict(metadata or {}), head["generation"] + 1)
            db.execute("UPDATE branches SET commit_id=? WHERE repo=? AND name=?", (commit_id, repo_id, branch))
            db.execute("DELETE FROM staging WHERE repo=? AND branch=?", (repo_id, branch))
            return self.get_commit(db, repo_id, commit_id)

    def merge(self, repo_id, source_ref, dest, committer, message, metadata, strategy,
              allow_empty=False, force=False, squash=False):
        strategies = {"": "default", "dest-wins": "dest-wins", "source-wins": "source-wins"}
        if (strategy or "") not in strategies:
            raise ApiError(400, "invalid strategy: invalid value: validation error")
        with self.write() as db:
            _, dest_id = self.writable_branch(db, repo_id, dest, force)
            if self.is_dirty(db, repo_id, dest, dest_id):
                raise ApiError(400, "%s: uncommitted changes (dirty branch)" % dest)
            source = self.resolve_commit(db, repo_id, source_ref)
            target = self.get_commit(db, repo_id, dest_id)
            base = self.merge_base(db, repo_id, source, target)
            if base is None:
                raise ApiError(400, "no merge base")
            src_mr, dst_mr, base_mr = source["meta_range_id"], target["meta_range_id"], base["meta_range_id"]
            # lakeFS committedManager.Merge: "no changes" exactly when the source's metarange id is the
            # merge base's (ids, not trees: an emptied tree is not the first commit's ""); the source's
            # id as-is when the destination did not move; otherwise a newly written merged metarange.
            if src_mr == base_mr and not (allow_empty or force):
                raise ApiError(400, "update branch %s: no changes" % dest)  # lakeFS's wording
            if dst_mr == base_mr:
                new_mr = src_mr
            else:
                new_mr = self.trees.written(db, self._three_way(db, base_mr, src_mr, dst_mr, strategy or ""))
            meta = dict(metadata or {})
            meta[MERGE_STRATEGY_KEY] = strategies[strategy or ""]
            parents = [dest_id] if squash else [dest_id, source["id"]]
            commit_id = self._add_commit(db, repo_id, parents, committer,
                                         message or "Merge '%s' into '%s'" % (source_ref, dest),
                                         int(time.time()), new_mr, meta,
                                         max(source["generation"], target["generation"]) + 1)
            db.execute("UPDATE branches SET commit_id=? WHERE repo=? AND name=?", (commit_id, repo_id, dest))
            return commit_id

    def _three_way(self, db, base_mr, src_mr, dst_mr, strategy):
        changes = []
        for path, base_entry, src_entry in self.trees.diff(db, base_mr, src_mr):
            dst_entry = self.trees.get(db, dst_mr, path)
            ident = lambda e: e["identity"] if e else None  # noqa: E731
            if ident(dst_entry) == ident(base_entry):
                changes.append((path, src_entry))
            elif ident(dst_entry) == ident(src_entry):
                continue
            elif strategy == "source-wins":
                changes.append((path, src_entry))
            elif strategy != "dest-wins":
                raise ApiError(409, "conflict found", reference="")
        return self.trees.apply(db, dst_mr, changes)

    def reset(self, repo_id, branch, kind, path, force=False):
        with self.write() as db:
            self.writable_branch(db, repo_id, branch, force)
            if kind == "reset":
                db.execute("DELETE FROM staging WHERE repo=? AND branch=?", (repo_id, branch))
            elif kind == "object":
                db.execute("DELETE FROM staging WHERE repo=? AND branch=? AND path=?", (repo_id, branch, path))
            elif kind == "common_prefix":
                end = prefix_end(path or "")
                sql, args = "DELETE FROM staging WHERE repo=? AND branch=? AND path>=?", [repo_id, branch, path or ""]
                if end is not None:
                    sql += " AND path<?"
                    args.append(end)
                db.execute(sql, args)
            else:
                raise ApiError(400, "unknown reset type")

    def hard_reset(self, repo_id, branch, ref, force=False):
        with self.write() as db:
            _, head = self.writable_branch(db, repo_id, branch, force)
            commit = self.resolve_commit(db, repo_id, ref)
            if self.is_dirty(db, repo_id, branch, head):
                raise ApiError(400, "%s: uncommitted changes (dirty branch)" % branch)
            db.execute("DELETE FROM staging WHERE repo=? AND branch=?", (repo_id, branch))
            db.execute("UPDATE branches SET commit_id=? WHERE repo=? AND name=?", (commit["id"], repo_id, branch))

    # --- multipart upload records -------------------------------------------------------------
    def add_mpu(self, upload_id, repo_id, branch, path, oid):
        with self.write() as db:
            db.execute("INSERT INTO mpu (upload_id, repo, branch, path, oid, created) VALUES (?,?,?,?,?,?)",
                       (upload_id, repo_id, branch, path, oid, int(time.time())))

    def get_mpu(self, db, upload_id):
        row = db.execute("SELECT repo, branch, path, oid FROM mpu WHERE upload_id=?", (upload_id,)).fetchone()
        return dict(zip(("repo", "branch", "path", "oid"), row)) if row else None

    def drop_mpu(self, db, upload_id):
        db.execute("DELETE FROM mpu WHERE upload_id=?", (upload_id,))


__all__ = ["ApiError", "Store", "View", "make_entry", "prefix_end"]
