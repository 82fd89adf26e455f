"""Differential testing of a branch mount against a local directory (issue 9): a seeded random
workload runs, operation by operation and in the same order, on a local directory (the model of
what the mount must show) and on the mount; results (success, errno, bytes read) and, every so
often, whole trees are compared.

Besides the local directory, the harness keeps `srv`: for every path, the SET of states lakeFS may
hold for it. An acknowledged operation (one that returned success and reaches the server at once,
or a close/fsync that uploads) narrows a path to its new state; a failed operation (an OSError
from the mount, under injected faults) or one in flight at a kill -9 widens it to {old, new}; bytes
written through a descriptor that has not been closed or fsync'd are on the server in no state
until the upload, and are all acceptable if the daemon dies. After each kill and at the end, the
server's tree (read through the API) must be in those sets, path by path, and the mount's view of
it must match.

States (hashable tuples): None (absent), ("d", mode) a directory (("d", mode, "uid:gid") when not
root's: dir_state), ("l", target) a symlink,
("f", sha256, size, mode, meta, mtime) a regular file (meta: sorted tuple of user metadata
items; mtime None when not compared). mtimes are compared only for files whose mtime the
workload set with utimens (whole seconds) after their last change of content; directory times,
atime/ctime are not compared. Modes are compared with their setuid/setgid/sticky bits, except
where the README says a mount hides them (a file's bits this mount did not write). A file's owner
(chown and fchown as root, also of files open for writing and unlinked while open) travels in meta
under OWNER_KEY, a directory's in its state; stat and fstat results carry uid and gid. Descriptors
read, set and remove user metadata too (fd_getxattrs, fd_setxattr, fd_removexattr), an orphan's
included: its metadata stays with its descriptors, shared by those orphaned together.

The POSIX semantics of issue 11 are in the workload: files created with modes 0000..07777 (the
umask applied), directories made and chmod'ed with their own modes, renames of directories onto
empty and non-empty directories (ENOTEMPTY) and across kinds (EISDIR, ENOTDIR), unlink and
replace-by-rename of files with descriptors open (those keep reading and writing their own bytes and
fstat works: an "orphan" slot, whose writes reach lakeFS never), renames of files that are open
(the descriptors follow), read-only descriptors that see what other descriptors write, and long
names: components of 200..255 bytes nested past lakeFS's 1024-byte key limit, where create, mkdir,
symlink and rename answer ENAMETOOLONG (the model emulates that limit: a local file system has
none), and 256-byte components (ENAMETOOLONG everywhere).

No pytest in here: tests/mount/test_differential.py and scripts/soak.sh drive it. A failure is a
Mismatch naming the seed, the operation index, the operation, the path, the candidates and what
was found; the same seed and length replay it (LAKEFUSE_DIFF_SEEDS).
"""
import collections
import errno
import hashlib
import json
import os
import random
import re
import shutil
import stat
import threading
import time

import mountlib

META_PREFIX = "user.lakefs.meta."
# the largest file the workload makes; LAKEFUSE_DIFF_MAX_FILE raises it to reach the multipart and
# eager-upload paths (files of several MiB, written in order from their start), at the cost of disk
MAX_FILE = int(os.environ.get("LAKEFUSE_DIFF_MAX_FILE") or 256 * 1024)
MAX_FDS = 8
NAMES = ("a", "b", "c", "d", "e", "f", "g", "h")
DIR_NAMES = ("a", "b", "c", "x", "y")  # shared with NAMES: files and directories collide
MODES = (0o600, 0o640, 0o644, 0o664, 0o700, 0o750, 0o755, 0o000, 0o4755, 0o2755, 0o1644, 0o6711)
# create modes as passed to open(2) (the umask 022 applies)
CREATE_MODES = (0o644, 0o644, 0o644, 0o000, 0o600, 0o755, 0o4755, 0o2750, 0o1644, 0o7777)
# directories: set-group-ID ones too, whose group and bit what is made inside inherits (Linux's rule,
# on the model's local file system and through the mount)
DIR_MODES = (0o755, 0o755, 0o700, 0o750, 0o000, 0o555, 0o1777, 0o4711, 0o2775, 0o2750)
# long components (nested, they pass lakeFS's key limit) and one over NAME_MAX
LONG_NAMES = ("l" * 255, "k" * 240, "j" * 200)
# names a program may use that look like libfuse's for a file unlinked while open (".fuse_hidden" and
# 16 hex digits): ordinary files and directories, never taken for libfuse's own
HIDDEN_LIKE_NAMES = (".fuse_hidden0123456789abcdef", ".fuse_hidden_x")
LIBFUSE_HIDDEN = re.compile(r"\.fuse_hidden[0-9a-f]{16}")  # the names libfuse hides open files under
TOO_LONG_NAME = "z" * 256
MAX_KEY = 1024  # lakeFS's catalog.MaxPathLength: an object key (a directory's marker "dir/" too)
META_KEYS = ("owner", "stage", "k1")
MAX_DEPTH = 3
# errnos that name the same failure (POSIX allows either)
ERRNO_CLASSES = [{errno.ENOTEMPTY, errno.EEXIST}, {errno.EISDIR, errno.EPERM}]
# errnos a mount may answer when the server failed (under faults) or the daemon died (kill)
FAULT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED,
                errno.ENOTCONN, errno.EBUSY, errno.ENOMEM, errno.EHOSTUNREACH, errno.ECONNREFUSED}


# operations that follow a symlink at their path
FOLLOWING_OPS = ("open", "write_file", "append_file", "truncate", "chmod", "utime", "setxattr", "removexattr",
                 "read_file")
FD_XATTR_OPS = ("fd_getxattrs", "fd_setxattr", "fd_removexattr")


def set_meta(md, key, value, flags=0):
    """The model's setxattr (value; flags XATTR_CREATE or XATTR_REPLACE) or removexattr (value None)
    of user metadata key."""
    if value is not None and flags & os.XATTR_CREATE and key in md:
        raise OSError(errno.EEXIST, "attribute exists")
    if value is not None and flags & os.XATTR_REPLACE and key not in md:
        raise OSError(errno.ENODATA, "no such attribute")
    if value is not None:
        md[key] = value
    elif key in md:
        del md[key]
    else:
        raise OSError(errno.ENODATA, "no such attribute")


# setxattr's flags: mostly none, sometimes create-only or replace-only
XATTR_FLAGS = (0, 0, 0, 0, os.XATTR_CREATE, os.XATTR_REPLACE)


def xattr_flags(op):
    """The flags of a setxattr or fd_setxattr op (older ops have none)."""
    return op[4] if op[0] in ("setxattr", "fd_setxattr") and len(op) > 4 else 0


class Mismatch(AssertionError):
    pass


class Fatal(Mismatch):
    """A mismatch after which the workload cannot go on (the remount failed)."""


def shorten(text):
    """Long names in a message as a character and a count: 'l' * 255 reads l{255}."""
    return re.sub(r"(\w)\1{19,}", lambda m: "%s{%d}" % (m.group(1), len(m.group(0))), text)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_state(data_hash, size, mode, meta, mtime=None):
    return ("f", data_hash, size, mode, tuple(sorted((meta or {}).items())), mtime)


# A file's owner travels in its state's metadata under this key (no user metadata key can hold a
# NUL), as "uid:gid", and only when it is not root's 0:0 (what a file created by the tests, as root,
# and an object without lakectl's posix-permissions show), so every other state stays as it was.
OWNER_KEY = "\0owner"
OWNERS = ((0, 0), (1000, 1000), (65534, 65534), (1234, 0))


def dir_state(mode, uid=0, gid=0, meta=None):
    """("d", mode), and the owner "uid:gid" after it when not root's (see OWNER_KEY); with user
    metadata (its marker's), ("d", mode, "uid:gid", sorted items) whoever owns it."""
    if meta:
        return ("d", mode, "%d:%d" % (uid, gid), tuple(sorted(meta.items())))
    return ("d", mode) if (uid, gid) == (0, 0) else ("d", mode, "%d:%d" % (uid, gid))


def dir_parts(state):
    """(mode, uid, gid, user metadata) of a directory state."""
    uid, gid = (int(x) for x in (state[2] if len(state) > 2 else "0:0").split(":"))
    return state[1], uid, gid, dict(state[3]) if len(state) > 3 else {}


def set_dir_attrs(path, state):
    """A model directory takes a directory state's owner, then its mode (its metadata is the
    workload's: Workload.set_dir_meta)."""
    mode, uid, gid, _ = dir_parts(state)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def with_owner(meta, uid, gid):
    out = {k: v for k, v in (meta or {}).items() if k != OWNER_KEY}
    if (uid, gid) != (0, 0):
        out[OWNER_KEY] = "%d:%d" % (uid, gid)
    return out


GHOST = ("ghost",)  # listed by readdir, but lstat answers ENOENT


def show(state):
    if state is None:
        return "absent"
    if state == GHOST:
        return "listed by readdir but lstat answers ENOENT"
    if state[0] == "unreadable":
        return state[1]
    if state[0] == "d":
        return "dir(mode %o%s%s)" % (state[1], ", owner %s" % state[2] if len(state) > 2 else "",
                                     ", meta %s" % dict(state[3]) if len(state) > 3 else "")
    if state[0] == "l":
        return "symlink->%r" % state[1]
    _, h, size, mode, meta, mtime = state
    return "file(%d bytes sha %s, mode %o, meta %s%s)" % (size, h[:12], mode, dict(meta),
                                                        "" if mtime is None else ", mtime %d" % mtime)


def visible(state):
    """What a mount that did not write them shows of state: a file's setuid/setgid/sticky bits hidden."""
    if state is None or state[0] != "f" or not state[3] & 0o7000:
        return state
    return state[:3] + (state[3] & 0o777,) + state[4:]


def visible_tree(tree):
    return {p: visible(s) for p, s in tree.items()}


def key_len(path, is_dir):
    """Length of the object key lakeFS would hold for path (a directory: its marker "path/")."""
    return len(path.encode()) + (1 if is_dir else 0)


def state_matches(cand, got):
    """got (observed) equals cand (a candidate); mtime compared only when both have one."""
    if cand is None or got is None or cand[0] != got[0]:
        return cand == got
    if cand[0] != "f":
        return cand == got
    if cand[:5] != got[:5]:
        return False
    return cand[5] is None or got[5] is None or cand[5] == got[5]


def errno_same(a, b):
    if a == b:
        return True
    return any(a in c and b in c for c in ERRNO_CLASSES)


def under(path, top):
    return path == top or path.startswith(top + "/")


def parent_of(path):
    return path.rsplit("/", 1)[0] if "/" in path else ""


# --- reading trees --------------------------------------------------------------------------------

def _retry(fn, retries):
    for attempt in range(retries + 1):
        try:
            return fn()
        except OSError as e:
            if e.errno not in FAULT_ERRNOS or attempt == retries:
                raise


def lstat_if_any(path, retries=0):
    """os.lstat(path), or None where there is no such file: none of that name, a parent that is a
    file, or a name no file can have (ENAMETOOLONG: a 256-byte component, or a key over lakeFS's
    limit on a mount)."""
    try:
        return _retry(lambda: os.lstat(path), retries)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return None
        raise


def read_meta_xattrs(path, retries=0):
    """{key: value} of path's user.lakefs.meta.* attributes but lakectl's own."""
    meta = {}
    for name in _retry(lambda: os.listxattr(path), retries):
        if name.startswith(META_PREFIX) and not name.startswith(META_PREFIX + "::lakefs::"):
            meta[name[len(META_PREFIX):]] = _retry(lambda: os.getxattr(path, name), retries).decode()
    return meta


def read_mount_tree(root, mtime_paths=(), retries=0):
    """{path: state} of everything under root, as a mount shows it (user metadata from xattrs)."""
    out = {}

    def walk(rel):
        path = os.path.join(root, rel) if rel else root
        names = _retry(lambda: os.listdir(path), retries)
        for name in names:  # libfuse's names for open-but-unlinked files are never listed
            child = rel + "/" + name if rel else name
            out[child] = read_mount_state(root, child, mtime_paths, retries)
            if out[child] is None:
                out[child] = GHOST
            if out[child][0] == "d":
                walk(child)

    walk("")
    return out


def read_mount_state(root, rel, mtime_paths=(), retries=0):
    path = os.path.join(root, rel)
    st = lstat_if_any(path, retries)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        try:
            meta = read_meta_xattrs(path, retries)
        except OSError as e:
            return ("unreadable", "lstat says a directory, listxattr/getxattr fails with %s" %
                    errno.errorcode.get(e.errno, e.errno))
        return dir_state(st.st_mode & 0o7777, st.st_uid, st.st_gid, meta)
    if stat.S_ISLNK(st.st_mode):
        return ("l", _retry(lambda: os.readlink(path), retries))

    def data():
        with open(path, "rb") as f:
            return f.read()

    step = "open/read"
    try:
        content = _retry(data, retries)
        step = "listxattr/getxattr"
        meta = read_meta_xattrs(path, retries)
    except OSError as e:
        return ("unreadable", "lstat says a file, %s fails with %s" % (step, errno.errorcode.get(e.errno, e.errno)))
    mtime = int(st.st_mtime) if rel in mtime_paths else None
    return file_state(sha(content), len(content), st.st_mode & 0o7777, with_owner(meta, st.st_uid, st.st_gid), mtime)


def read_api_tree(server, repo, ref, mtime_paths=()):
    """{path: state} of what lakeFS holds on ref: objects are files (or symlinks with lakectl's
    ::lakefs::symlink-target), their prefixes and markers directories."""
    out = {}
    for st in mountlib.api_list_objects(server, repo, ref):
        path = st["path"]
        marker = path.endswith("/")
        parts = path.rstrip("/").split("/")
        for i in range(1, len(parts)):
            out.setdefault("/".join(parts[:i]), ("d", 0o755))  # a prefix (without marker: 0755)
        if marker:
            # the marker's posix-permissions are the directory's mode (lakectl's folder format)
            md = st.get("metadata") or {}
            has_mode = "::lakefs::posix-permissions" in md
            perms = json.loads(md.get("::lakefs::posix-permissions") or "{}")
            out[path.rstrip("/")] = dir_state(mountlib.expected_mode(st) if has_mode else 0o755,
                                              perms.get("UID", 0), perms.get("GID", 0),
                                              {k: v for k, v in md.items() if not k.startswith("::lakefs::")})
            continue
        md = st.get("metadata") or {}
        if "::lakefs::symlink-target" in md:
            out[path] = ("l", md["::lakefs::symlink-target"])
            continue
        data = mountlib.api_get(server, repo, ref, path)
        meta = {k: v for k, v in md.items() if not k.startswith("::lakefs::")}
        mtime = mountlib.expected_mtime(st) if path in mtime_paths else None
        perms = json.loads(md.get("::lakefs::posix-permissions") or "{}")
        meta = with_owner(meta, perms.get("UID", 0), perms.get("GID", 0))
        out[path] = file_state(sha(data), len(data), mountlib.expected_mode(st), meta, mtime)
    return out


# --- the workload ---------------------------------------------------------------------------------

class Side:
    """One tree the workload runs on: root directory and its open descriptors {slot: fd}."""

    def __init__(self, root, is_model):
        self.root, self.is_model, self.fds = root, is_model, {}

    def p(self, rel):
        return os.path.join(self.root, rel)


class Workload:
    """mode: "plain" (every result and tree must match), "faults" (the mount may fail an operation,
    which then leaves {old, new}) or "kill" (kill -9 of the daemon between or during operations).

    hooks (all optional): disarm() / arm(k) faults around observations; kill() kills the daemon
    (returns nothing) and remount() -> new mount root; conflict(path, data) writes data at path
    through the API as another client; api_tree(mtime_paths) reads the server's tree."""

    def __init__(self, seed, model_root, mount_root, mode="plain", hooks=None, commit_path=None,
                 compare_every=200, kill_every=(5, 60), conflict_ratio=0.3, kill_during_ratio=0.5):
        self.seed, self.mode = seed, mode
        self.rng = random.Random(seed)
        self.model = Side(model_root, True)
        self.mnt = Side(mount_root, False)
        self.hooks = hooks or {}
        self.commit_path = commit_path
        self.compare_every = compare_every
        self.kill_every, self.conflict_ratio, self.kill_during_ratio = kill_every, conflict_ratio, kill_during_ratio
        self.meta = {}        # model's user metadata: path -> {key: value}
        self.mtime_set = {}   # path -> mtime the workload set (whole seconds) since its last change
        self.fdinfo = {}      # slot -> {"path", "flags", "writable", "readable"}
        self.srv = {}         # path -> set of states lakeFS may hold (missing: {None})
        self.history = {}     # path -> set of file states written through descriptors since the last upload
        self.index, self.op = -1, None
        self.stats = {"ops": 0, "mount_errors": 0, "compares": 0, "kills": 0, "kills_during_op": 0,
                      "conflicts": 0, "commits": 0, "server_checks": 0, "pathless_fstat": 0}
        self.recent = collections.deque(maxlen=300)  # (index, op, model result, mount result)
        self.next_kill = None
        self.kill_seq = 0
        self.mismatches = []
        os.makedirs(model_root, exist_ok=True)

    # --- failures -------------------------------------------------------------------------------
    commit_error = None

    def fail(self, what):
        if self.op and self.op[0] == "commit" and self.commit_error:
            what += "; .lakefs/commit says %s" % self.commit_error
        lines = ["#%d %r: model %s, mount %s" % (i, op, _res(rl), _res(rm)) for i, op, rl, rm in self.recent]
        paths = {x for x in (self.op or ()) if isinstance(x, str) and " " not in x}
        paths |= {w.rstrip(":") for w in what.split() if w.endswith(":") and "/" not in w[:-1] or "/" in w}
        paths = {p.rstrip(":") for p in paths if p}
        # also the parents: a rename of a directory changes its children
        paths |= {"/".join(p.split("/")[:i]) for p in list(paths) for i in range(1, p.count("/") + 1)}
        # a descriptor's own history: its open, its operations, and what happened to its paths
        slots = {self.op[1]} if self.op and (self.op[0].startswith("fd_") or self.op[0] == "open") else set()
        for i, op, rl, rm in self.recent:
            if slots & {op[1]} and op[0] == "open":
                paths.add(op[2])

        def on_slot(op):
            return (op[0].startswith("fd_") or op[0] == "open") and op[1] in slots
        related = [ln for (i, op, rl, rm), ln in zip(self.recent, lines)
                   if op[0].startswith("kill") or on_slot(op) or
                   any(isinstance(x, str) and (under(x, p) or under(p, x)) for x in op[1:] for p in paths)][-25:]
        raise Mismatch(shorten("seed %d, op #%d %r (mode %s): %s\nrecent operations on the paths named (last 300 ops):\n  %s"
                               "\nlast operations:\n  %s" % (self.seed, self.index, self.op, self.mode, what,
                                                             "\n  ".join(related) or "-", "\n  ".join(lines[-8:]) or "-")))

    # --- model views ----------------------------------------------------------------------------
    def local_state(self, rel, with_mtime=True):
        path = self.model.p(rel)
        st = lstat_if_any(path)
        if st is None:
            return None
        if stat.S_ISDIR(st.st_mode):
            return dir_state(st.st_mode & 0o7777, st.st_uid, st.st_gid, self.meta.get(rel))
        if stat.S_ISLNK(st.st_mode):
            return ("l", os.readlink(path))
        with open(path, "rb") as f:
            data = f.read()
        mtime = self.mtime_set.get(rel) if with_mtime else None
        return file_state(sha(data), len(data), st.st_mode & 0o7777,
                          with_owner(self.meta.get(rel), st.st_uid, st.st_gid), mtime)

    def kinds(self):
        """{path: "f" | "d" | "l"} of the model, without reading data."""
        out = {}

        def walk(rel):
            with os.scandir(self.model.p(rel) if rel else self.model.root) as it:
                for e in it:
                    child = rel + "/" + e.name if rel else e.name
                    if e.is_symlink():
                        out[child] = "l"
                    elif e.is_dir():
                        out[child] = "d"
                        walk(child)
                    else:
                        out[child] = "f"

        walk("")
        return out

    def local_tree(self):
        return {p: self.local_state(p) for p in self.kinds()}

    def subtree(self, tops):
        """{path: local state} for every path at or under the tops, plus paths srv knows there."""
        out = {}
        for top in tops:
            out[top] = self.local_state(top)
            if out[top] and out[top][0] == "d":
                def walk(rel):
                    for name in os.listdir(self.model.p(rel)):
                        child = rel + "/" + name
                        out[child] = self.local_state(child)
                        if out[child][0] == "d":
                            walk(child)
                walk(top)
            for p in self.srv:
                if under(p, top) and p not in out:
                    out[p] = None
        return out

    def kind(self, rel):
        st = lstat_if_any(self.model.p(rel))
        if st is None:
            return None
        return "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"

    def size(self, rel):
        try:
            return os.lstat(self.model.p(rel)).st_size
        except OSError:
            return 0

    # --- generation -----------------------------------------------------------------------------
    def pick_path(self, names=NAMES, exist=None):
        rng = self.rng
        tree = self.kinds()
        if exist is not None and rng.random() < 0.85:
            pool = [p for p, k in tree.items() if k in exist]
            if pool:
                return rng.choice(sorted(pool))
        # short names stay within MAX_DEPTH; under long names the tree grows past lakeFS's key limit
        dirs = [""] + sorted(p for p, k in tree.items() if k == "d" and (
            p.count("/") < MAX_DEPTH - 1 or (len(p) > 190 and p.count("/") < 6)))
        parent = rng.choice(dirs)
        if rng.random() < 0.03:
            parent = (parent + "/" if parent else "") + "nodir"
        r = rng.random()
        if r < (0.6 if len(parent) > 190 else 0.04):
            name = rng.choice(LONG_NAMES)
        elif r < 0.005 + (0.6 if len(parent) > 190 else 0.04):
            name = TOO_LONG_NAME
        elif r < 0.02 + (0.6 if len(parent) > 190 else 0.04):
            name = rng.choice(HIDDEN_LIKE_NAMES)
        else:
            name = rng.choice(names)
        return (parent + "/" if parent else "") + name

    def gen(self):
        op = self._gen()
        # never through a symlink (its target may point outside the tree): stat it instead
        if op[0] in FOLLOWING_OPS and self.kind(op[2] if op[0] == "open" else op[1]) == "l":
            return ("stat", op[2] if op[0] == "open" else op[1])
        # descriptors are on files (a read-only open of a directory would succeed)
        if op[0] == "open" and op[3] & os.O_ACCMODE == os.O_RDONLY and self.kind(op[2]) == "d":
            return ("stat", op[2])
        # of directories: modes (see DIR_MODES) and user metadata; their times are not
        # compared
        if op[0] == "chmod" and self.kind(op[1]) == "d":
            return ("chmod", op[1], DIR_MODES[op[2] % len(DIR_MODES)])
        if op[0] == "utime" and self.kind(op[1]) == "d":
            return ("stat", op[1])
        # chown: of files and directories, not of a file with setuid or setgid bits (the kernel
        # clears them with a second request: not modelled)
        if op[0] == "chown" and (self.kind(op[1]) not in ("f", "d") or
                                 os.lstat(self.model.p(op[1])).st_mode & 0o6000):
            return ("stat", op[1])
        # nor of a descriptor libfuse has no path for (ESTALE, as fstat: see orphans_follow)
        if op[0] == "fd_fchown" and (os.fstat(self.model.fds[op[1]]).st_mode & 0o6000 or
                                     self.fdinfo[op[1]].get("pathless")):
            return ("fd_fstat", op[1])
        if op[0] in FD_XATTR_OPS and self.fdinfo[op[1]].get("pathless"):
            return ("fd_fstat", op[1])
        return op

    def slot_meta(self, slot):
        """The model's user metadata of a descriptor's file: its path's, or its orphan's own (shared by
        the descriptors orphaned together)."""
        info = self.fdinfo[slot]
        if info["path"] is None:
            return info.setdefault("meta", {})
        return self.meta.setdefault(info["path"], {})

    def fd_xattr(self, side, op):
        kind, slot = op[0], op[1]
        if side.is_model:
            md = self.slot_meta(slot)
            if kind == "fd_getxattrs":
                return tuple(sorted(md.items()))
            return set_meta(md, op[2], op[3] if kind == "fd_setxattr" else None, xattr_flags(op))
        fd = side.fds[slot]
        if kind == "fd_getxattrs":
            names = [n for n in os.listxattr(fd) if n.startswith(META_PREFIX) and
                     not n.startswith(META_PREFIX + "::lakefs::")]
            return tuple(sorted((n[len(META_PREFIX):], os.getxattr(fd, n).decode()) for n in names))
        if kind == "fd_setxattr":
            os.setxattr(fd, META_PREFIX + op[2], op[3].encode(), xattr_flags(op))
        else:
            os.removexattr(fd, META_PREFIX + op[2])
        return None

    def slot_size(self, slot):
        return os.fstat(self.model.fds[slot]).st_size

    def open_paths(self):
        return sorted({i["path"] for i in self.fdinfo.values() if i["path"] is not None})

    def _gen(self):
        rng = self.rng
        r = rng.random()
        slots = sorted(self.fdinfo)
        if slots and r < 0.30:
            slot = rng.choice(slots)
            info = self.fdinfo[slot]
            k = rng.random()
            if not info["writable"]:
                if k < 0.55:
                    return ("fd_read", slot, rng.randrange(0, MAX_FILE // 2), rng.randrange(1, 70000))
                if k < 0.75:
                    return ("fd_fstat", slot)
                if k < 0.80:
                    return ("fd_getxattrs", slot)
                return ("fd_close", slot)
            if k < 0.45 and self.slot_size(slot) > MAX_FILE - 64 * 1024:
                return ("fd_truncate", slot, rng.randrange(0, MAX_FILE // 2))
            if k < 0.45:
                if info["flags"] & os.O_APPEND:
                    return ("fd_write", slot, None, self.rand_len(), rng.randrange(1 << 30))
                return ("fd_write", slot, rng.randrange(0, MAX_FILE // 2), self.rand_len(), rng.randrange(1 << 30))
            if k < 0.55 and info["readable"]:
                return ("fd_read", slot, rng.randrange(0, MAX_FILE // 2), rng.randrange(1, 70000))
            if k < 0.60:
                return ("fd_truncate", slot, rng.randrange(0, MAX_FILE // 2))
            if k < 0.62:
                return ("fd_fstat", slot)
            if k < 0.65:
                return ("fd_fchown", slot) + rng.choice(OWNERS)
            if k < 0.74:
                return ("fd_fsync", slot)
            if k < 0.76:
                return ("fd_getxattrs", slot)
            if k < 0.78:
                return ("fd_setxattr", slot, rng.choice(META_KEYS), "v%d" % rng.randrange(1000),
                        rng.choice(XATTR_FLAGS))
            if k < 0.79:
                return ("fd_removexattr", slot, rng.choice(META_KEYS))
            return ("fd_close", slot)
        r = rng.random()
        if r < 0.12 and len(self.fdinfo) < MAX_FDS:
            path = self.pick_path(exist="f")
            flags = rng.choice([os.O_RDWR, os.O_WRONLY, os.O_RDWR | os.O_APPEND, os.O_WRONLY | os.O_APPEND,
                                os.O_RDONLY])
            if rng.random() < 0.5:
                flags |= os.O_CREAT
                if rng.random() < 0.2:
                    flags |= os.O_EXCL
            if rng.random() < 0.15 and flags & os.O_ACCMODE != os.O_RDONLY:
                flags |= os.O_TRUNC
            free = [s for s in range(MAX_FDS) if s not in self.fdinfo]
            return ("open", rng.choice(free), path, flags, rng.choice(CREATE_MODES))
        if r < 0.24:
            return ("write_file", self.pick_path(exist="f"), self.rand_len(), rng.randrange(1 << 30))
        if r < 0.30:
            path = self.pick_path(exist="f")
            if self.size(path) > MAX_FILE - 4096:
                return ("truncate", path, rng.randrange(0, MAX_FILE // 2))
            return ("append_file", path, self.rand_len(small=True), rng.randrange(1 << 30))
        if r < 0.35:
            return ("truncate", self.pick_path(exist="f"), rng.randrange(0, MAX_FILE // 2))
        if r < 0.45:
            return self.gen_rename()
        if r < 0.51:
            return ("mkdir", self.pick_path(names=DIR_NAMES), rng.choice(DIR_MODES))
        if r < 0.55:
            return ("rmdir", self.pick_path(names=DIR_NAMES, exist="d"))
        if r < 0.62:
            opened = self.open_paths()
            if opened and rng.random() < 0.4:  # a file with descriptors open
                return ("unlink", rng.choice(opened))
            return ("unlink", self.pick_path(exist="fl"))
        if r < 0.66:
            return ("symlink", rng.choice(["a", "../b", "nowhere", "d/e/f", "x" * 40]), self.pick_path())
        if r < 0.71:
            return ("chmod", self.pick_path(exist="fd"), rng.choice(MODES))
        if r < 0.73:
            return ("chown", self.pick_path(exist="fd")) + rng.choice(OWNERS)
        if r < 0.79:
            # a fifth of them before 1970 (negative seconds, as tar and rsync set for old files)
            return ("utime", self.pick_path(exist="f"), rng.randrange(-500000000, 2000000000))
        if r < 0.88:
            return ("setxattr", self.pick_path(exist="ffffd"), rng.choice(META_KEYS), "v%d" % rng.randrange(1000),
                    rng.choice(XATTR_FLAGS))
        if r < 0.92:
            return ("removexattr", self.pick_path(exist="ffffd"), rng.choice(META_KEYS))
        if r < 0.96:
            return ("read_file", self.pick_path(exist="f"))
        if r < 0.98 and self.commit_path:
            return ("commit", "commit %d of seed %d" % (self.index, self.seed))
        return ("stat", self.pick_path(exist="fdl"))

    def gen_rename(self):
        """Any kind onto an absent name or one of the same kind (a directory onto an empty or a
        non-empty directory: ENOTEMPTY), now and then across kinds (EISDIR, ENOTDIR); a file onto
        a file with descriptors open, an open file elsewhere. Never into itself."""
        rng = self.rng
        tree = self.kinds()
        movable = sorted(tree)
        if not movable:
            return ("stat", "a")
        opened = [p for p in self.open_paths() if p in tree]  # (kinds() leaves out some names)
        src = rng.choice(movable)
        if opened and rng.random() < 0.25:
            if rng.random() < 0.5:  # replace a file with descriptors open
                files = [p for p, k in tree.items() if k == "f" and p not in opened]
                if files:
                    return ("rename", rng.choice(sorted(files)), rng.choice(opened))
            src = rng.choice(opened)  # move a file with descriptors open
        for _ in range(20):
            dst = self.pick_path(names=NAMES if tree[src] != "d" else DIR_NAMES)
            if dst == src or under(dst, src):
                continue
            cur = tree.get(dst)
            same = cur is None or (cur == "d") == (tree[src] == "d")
            if same or rng.random() < 0.2:
                return ("rename", src, dst)
        return ("stat", src)

    def rand_len(self, small=False):
        r = self.rng.random()
        if small or r < 0.6:
            return self.rng.randrange(0, 4096)
        if r < 0.9:
            return self.rng.randrange(4096, 64 * 1024)
        return self.rng.randrange(64 * 1024, MAX_FILE // 2)

    @staticmethod
    def data_of(n, seed):
        return random.Random(seed).randbytes(n)

    # --- execution ------------------------------------------------------------------------------
    def affected(self, op):
        """Top paths whose subtrees the operation may change, and the paths of fd slots it closes first."""
        kind = op[0]
        if kind.startswith("fd_"):  # an orphan slot (its file unlinked or replaced) changes no path
            return [self.fdinfo[op[1]]["path"]] if self.fdinfo.get(op[1], {}).get("path") else []
        if kind == "open":
            return [op[2]]
        if kind == "rename":
            return [op[1], op[2]]
        if kind == "symlink":
            return [op[2]]
        if kind == "commit":
            return []
        return [op[1]]

    def apply(self, side, op):
        """Runs op on one side; returns ("ok", value) or ("err", errno)."""
        self.last_step = None
        try:
            if side.is_model or self.mount_is_local:
                return ("ok", self._apply_with_key_limit(side, op))
            return ("ok", self._apply(side, op))
        except OSError as e:
            return ("err", e.errno)

    mount_is_local = False  # the harness's own tests: the "mount" is a local directory too

    def _apply_with_key_limit(self, side, op):
        """_apply on a local directory, with lakeFS's limit on object keys that a local file system
        lacks: making a name whose key (a directory's marker included) would be over MAX_KEY bytes
        answers ENAMETOOLONG and changes nothing, as on a branch mount."""
        kind = op[0]
        new = None  # (path, is_dir) of a name the operation makes, when it would make one
        if kind == "open" and op[3] & os.O_CREAT:
            new = (op[2], False)
        elif kind in ("write_file", "append_file"):
            new = (op[1], False)
        elif kind == "mkdir":
            new = (op[1], True)
        elif kind == "symlink":
            new = (op[2], False)
        if new and key_len(new[0], new[1]) > MAX_KEY and not os.path.lexists(side.p(new[0])) and \
                os.path.isdir(side.p(parent_of(new[0]))) and len(os.path.basename(new[0]).encode()) <= 255:
            raise OSError(errno.ENAMETOOLONG, "key over lakeFS's limit")
        # Looking up a name whose key is over the limit answers ENAMETOOLONG on a branch mount (no
        # such object can exist), where a local directory answers ENOENT: the first such component
        # below an existing directory, as the kernel walks the path.
        if kind in ("open", "symlink"):
            looked_up = [op[2]]
        elif kind == "rename":
            looked_up = [op[1], op[2]]
        else:
            looked_up = [op[1]] if not kind.startswith("fd_") and kind != "commit" else []
        for q in looked_up[:1] if kind == "rename" and not os.path.lexists(side.p(op[1])) else looked_up:
            parts = q.split("/")
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                if len(prefix.encode()) > MAX_KEY:
                    if os.path.isdir(side.p(parent_of(prefix))) and len(parts[i - 1].encode()) <= 255:
                        raise OSError(errno.ENAMETOOLONG, "key over lakeFS's limit")
                    break
        if kind != "rename":
            return self._apply(side, op)
        src, dst = op[1], op[2]
        try:
            st = os.lstat(side.p(src))
        except OSError:
            return self._apply(side, op)
        moved = [(dst, stat.S_ISDIR(st.st_mode))]
        if stat.S_ISDIR(st.st_mode):
            for top, dirs, files in os.walk(side.p(src)):
                rel = dst + top[len(side.p(src)):]
                moved += [(rel + "/" + d, True) for d in dirs] + [(rel + "/" + f, False) for f in files]
        try:
            old_dst = os.lstat(side.p(dst))
            old_xattrs = {n: os.getxattr(side.p(dst), n, follow_symlinks=False)
                          for n in os.listxattr(side.p(dst), follow_symlinks=False) if n.startswith("user.")}
        except OSError:
            old_dst = None
        result = self._apply(side, op)
        if any(key_len(q, d) > MAX_KEY for q, d in moved):
            os.rename(side.p(dst), side.p(src))  # undone: only an empty directory can have been replaced
            if old_dst is not None:  # as it was: owner (first: a chown clears setgid), mode, xattrs
                os.mkdir(side.p(dst))
                os.chown(side.p(dst), old_dst.st_uid, old_dst.st_gid)
                os.chmod(side.p(dst), old_dst.st_mode & 0o7777)
                for n, v in old_xattrs.items():
                    os.setxattr(side.p(dst), n, v)
            raise OSError(errno.ENAMETOOLONG, "key over lakeFS's limit")
        return result

    def _apply(self, side, op):
        kind = op[0]
        p = side.p
        if kind == "open":
            _, slot, path, flags, mode = op
            fd = os.open(p(path), flags | os.O_CLOEXEC, mode)
            side.fds[slot] = fd
            return None
        if kind == "fd_fstat":
            st = os.fstat(side.fds[slot_of(op)])
            return (st.st_size, stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid)
        if kind == "fd_write":
            _, slot, off, n, dseed = op
            data = self.data_of(n, dseed)
            fd = side.fds[slot]
            written = os.write(fd, data) if off is None else os.pwrite(fd, data, off)
            return written
        if kind == "fd_read":
            _, slot, off, n = op
            return sha(os.pread(side.fds[slot], n, off))
        if kind == "fd_truncate":
            os.ftruncate(side.fds[slot_of(op)], op[2])
            return None
        if kind == "fd_fchown":
            os.fchown(side.fds[slot_of(op)], op[2], op[3])
            return None
        if kind in FD_XATTR_OPS:
            return self.fd_xattr(side, op)
        if kind == "fd_fsync":
            os.fsync(side.fds[slot_of(op)])
            return None
        if kind == "fd_close":
            fd = side.fds.pop(slot_of(op))
            os.close(fd)
            return None
        if kind in ("write_file", "append_file"):
            _, path, n, dseed = op
            flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if kind == "write_file" else os.O_APPEND)
            self.last_step = "open"
            fd = os.open(p(path), flags | os.O_CLOEXEC, 0o644)
            try:
                self.last_step = "write"
                data = self.data_of(n, dseed)
                written = os.write(fd, data)
            except OSError:
                _close_quietly(fd)
                raise
            self.last_step = "close"
            os.close(fd)
            return written
        if kind == "truncate":
            os.truncate(p(op[1]), op[2])
            return None
        if kind == "rename":
            os.rename(p(op[1]), p(op[2]))
            return None
        if kind == "mkdir":
            os.mkdir(p(op[1]), op[2])
            return None
        if kind == "rmdir":
            os.rmdir(p(op[1]))
            return None
        if kind == "unlink":
            os.unlink(p(op[1]))
            return None
        if kind == "symlink":
            os.symlink(op[1], p(op[2]))
            return None
        if kind == "chmod":
            os.chmod(p(op[1]), op[2])
            return None
        if kind == "chown":
            os.chown(p(op[1]), op[2], op[3])
            return None
        if kind == "utime":
            os.utime(p(op[1]), (op[2], op[2]))
            return None
        if kind == "read_file":
            with open(p(op[1]), "rb") as f:
                return sha(f.read())
        if kind == "stat":
            st = os.lstat(p(op[1]))
            if stat.S_ISREG(st.st_mode):
                return ("f", st.st_size, st.st_mode & 0o7777, st.st_uid, st.st_gid)
            return (stat.S_IFMT(st.st_mode),)
        if kind in ("setxattr", "removexattr"):
            path = op[1]
            if side.is_model:
                st = os.lstat(p(path))
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    raise OSError(errno.ENOTSUP, "not a file or a directory")
                return set_meta(self.meta.setdefault(path, {}), op[2], op[3] if kind == "setxattr" else None,
                                xattr_flags(op))
            if kind == "setxattr":
                os.setxattr(p(path), META_PREFIX + op[2], op[3].encode(), xattr_flags(op))
            else:
                os.removexattr(p(path), META_PREFIX + op[2])
            return None
        if kind == "commit":
            if side.is_model:
                return None
            try:
                mountlib.control_write(self.commit_path, op[1])
            except OSError as e:
                if e.errno != errno.ENODATA:  # nothing to commit is fine
                    try:
                        self.commit_error = mountlib.control_read(self.commit_path)[:500]
                    except OSError as e2:
                        self.commit_error = "(unreadable: %s)" % e2
                    raise
            self.stats["commits"] += 1
            return None
        raise AssertionError("unknown op %r" % (op,))

    def writable_slots(self, path, but=None):
        return [s for s, i in self.fdinfo.items() if i["path"] == path and i["writable"] and s != but]

    def close_slots_on(self, tops, strictly_under=False):
        """Closes (both sides) every descriptor on a path at or under tops (strictly under: not on
        the tops themselves), as operations of their own."""
        for slot in sorted(self.fdinfo):
            # a close may have closed others (a kill, an adopt): skip those
            path = self.fdinfo[slot]["path"] if slot in self.fdinfo else None
            if path is not None and any(under(path, t) and not (strictly_under and path == t) for t in tops):
                self.step(("fd_close", slot), nested=True)

    def count_features(self, op, rl, before, orphan):
        """stats["features"]: how often the workload reached each case of issue 11 (on the model)."""
        f = self.stats.setdefault("features", collections.Counter())
        kind = op[0]
        if orphan:
            f["orphan_" + kind] += 1
        if rl[0] == "err" and rl[1] in (errno.ENOTEMPTY, errno.EEXIST) and kind == "rename":
            f["rename_dir_onto_nonempty"] += 1
        if rl[0] == "err" and rl[1] == errno.ENAMETOOLONG:
            long_component = any(isinstance(x, str) and any(len(c.encode()) > 255 for c in x.split("/"))
                                 for x in op[1:])
            f["enametoolong_" + ("name" if long_component else "key") + "_" + kind] += 1
        if kind in ("setxattr", "fd_setxattr") and xattr_flags(op) and rl[0] == "err" and \
                rl[1] in (errno.EEXIST, errno.ENODATA):
            f["setxattr_flag_refused"] += 1
        if rl[0] != "ok":
            return
        if kind == "rename" and (before.get(op[2]) or ("",))[0] == "d":
            f["rename_dir_onto_empty"] += 1
        if kind in ("unlink", "rename") and any(i["path"] == (op[1] if kind == "unlink" else op[2])
                                                for i in self.fdinfo.values()):
            f[kind + "_with_descriptors_open"] += 1
        if kind == "rename" and any(i["path"] == op[1] for i in self.fdinfo.values()):
            f["rename_of_an_open_file"] += 1
        if kind == "open" and op[3] & os.O_CREAT and before.get(op[2]) is None:
            f["create_mode_%04o" % (op[4] & ~0o022 & 0o7777)] += 1
        if kind == "mkdir":
            f["mkdir_mode_%04o" % (op[2] & ~0o022 & 0o7777)] += 1
        made = op[1] if kind == "mkdir" else op[2] if kind == "open" and op[3] & os.O_CREAT else None
        if made and before.get(made) is None and os.path.dirname(made) and \
                os.lstat(self.model.p(os.path.dirname(made))).st_mode & stat.S_ISGID:
            f["made_in_a_setgid_dir"] += 1
        if kind == "chmod" and (before.get(op[1]) or ("",))[0] == "d":
            f["chmod_dir"] += 1
        if kind == "chown" and any(i["path"] == op[1] and i["writable"] for i in self.fdinfo.values()):
            f["chown_of_a_file_open_for_writing"] += 1
        if kind == "fd_fchown":
            f["fd_fchown"] += 1
        if kind in FD_XATTR_OPS:
            f[kind] += 1
        if kind == "chown" and (before.get(op[1]) or ("",))[0] == "d":
            f["chown_dir"] += 1
        if kind in ("setxattr", "removexattr") and (before.get(op[1]) or ("",))[0] == "d":
            f[kind + "_dir"] += 1
        if any(isinstance(x, str) and os.path.basename(x) in HIDDEN_LIKE_NAMES for x in op[1:]):
            f["hidden_like_name"] += 1
        if any(isinstance(x, str) and key_len(x, False) > 900 for x in op[1:]):
            f["key_over_900_bytes"] += 1

    def orphan_slots(self, path):
        """The file at path was unlinked or replaced: its descriptors keep it, under no name (their
        writes reach lakeFS never); what they wrote is no longer a candidate for the name. libfuse
        keeps such a file under a hidden name in its directory (hidden_dir, which follows renames)."""
        meta = dict(self.meta.get(path) or {})
        for info in self.fdinfo.values():
            if info["path"] == path:
                info["path"] = None
                info["hidden_dir"] = os.path.dirname(path)
                info["meta"] = meta  # one dict: they share the file
        self.history.pop(path, None)

    def orphans_follow(self, op, before):
        """A directory renamed carries the hidden names of its orphans along; one removed (rmdir, or
        replaced by a rename) leaves them without any path in libfuse's tree: fstat of such a
        descriptor (a GETATTR without a file handle) is then ESTALE, the documented limit of the
        path-based libfuse API (README, "Open files"); reads, writes, fsync and ftruncate work."""
        kind = op[0]
        gone = []
        if kind == "rmdir":
            gone.append(op[1])
        if kind == "rename" and (before.get(op[1]) or ("",))[0] == "d":
            if (before.get(op[2]) or ("",))[0] == "d":
                gone.append(op[2])
        for info in self.fdinfo.values():
            d = info.get("hidden_dir")
            if info["path"] is not None or d is None or info.get("pathless"):
                continue
            if any(under(d, g) for g in gone):
                info["pathless"] = True
            elif kind == "rename" and (d == op[1] or under(d, op[1])):
                info["hidden_dir"] = op[2] + d[len(op[1]):]

    min_kills = 0  # kill mode: go on after nops until this many kill cycles

    def run(self, nops):
        """Runs nops operations (the same ones for the same seed as long as the mount agrees). A
        mismatch is recorded, the model resynchronised from the mount and the workload goes on, up
        to max_mismatches (then the Mismatch is raised)."""
        i = 0
        while i < nops or self.stats["kills"] < self.min_kills:
            if i >= 50 * max(nops, 1):
                raise Fatal("seed %d: %d kills after %d operations, %d wanted" % (
                    self.seed, self.stats["kills"], i, self.min_kills))
            self.index = i
            i += 1
            with self.recording():
                self.maybe_kill(i)
                op = self.gen()
                self.step(op)
                if self.compare_every and i % self.compare_every == 0:
                    self.compare()
            self.stats["ops"] += 1
        self.index = i

    max_mismatches = int(os.environ.get("LAKEFUSE_DIFF_MAX_MISMATCHES") or 10)

    class _Recorder:
        def __init__(self, w):
            self.w = w

        def __enter__(self):
            return self

        def __exit__(self, kind, value, tb):
            if kind is None or not issubclass(kind, Mismatch) or issubclass(kind, Fatal):
                return False
            self.w.mismatches.append(str(value))
            if len(self.w.mismatches) >= self.w.max_mismatches:
                e = Fatal(summary(self.w.seed, self.w.mismatches) + "\n(seed stopped after %d mismatches)" %
                          len(self.w.mismatches))
                e.summarised = True
                raise e
            self.w.resync()
            return True

    def recording(self):
        """Context: a Mismatch inside is recorded and followed by resync()."""
        return self._Recorder(self)

    def resync(self):
        """After a mismatch: every descriptor closed, the model rebuilt from what the mount shows, and
        lakeFS allowed to hold what it holds now or what the mount shows (the next acknowledged
        operation on a path narrows it again)."""
        self.stats["resyncs"] = self.stats.get("resyncs", 0) + 1
        self.kill_now_during = False
        if "kill" in self.hooks and (self.killed or not mountlib.is_mounted(self.mnt.root)):
            self.killed = False  # the daemon died: remount (same cache dir) without checks
            self.hooks["kill"]()
            self.mnt = Side(self.hooks["remount"](), False)
            self.commit_path = os.path.join(self.mnt.root, ".lakefs", "commit")
        if "disarm" in self.hooks:
            self.hooks["disarm"]()
        try:
            for side in (self.model, self.mnt):
                for slot in list(side.fds):
                    _close_quietly(side.fds.pop(slot))
            self.fdinfo.clear()
            self.history.clear()
            view = read_mount_tree(self.mnt.root, (), retries=3)
            self.reset_to(view, "resynchronising after a mismatch (the mount's view changed between two reads)")
            if "api_tree" in self.hooks:
                for p, st in self.hooks["api_tree"](()).items():
                    self.srv[p] = self.srv_get(p) | {st}
        except (OSError, Mismatch) as e:
            self.mismatches.append(str(e))
            err = Fatal(summary(self.seed, self.mismatches) + "\n(seed stopped: resynchronising failed)")
            err.summarised = True
            raise err
        finally:
            if "arm" in self.hooks:
                self.hooks["arm"](self.index)

    def step(self, op, nested=False):
        if not nested:
            self.op = op
        kind = op[0]
        if kind in ("rename", "unlink", "rmdir"):
            if self.mode == "faults" or self.kill_now_during:
                # a failed or interrupted unlink/rename leaves {old, new}: which file a descriptor
                # then has is not known, so none is left open on the names
                self.close_slots_on(self.affected(op))
            else:
                # descriptors on a file unlinked or replaced stay open (orphans), on a file renamed
                # they follow it; those inside a directory renamed are closed first
                self.close_slots_on(self.affected(op), strictly_under=True)
        tops = self.affected(op)
        before = self.subtree(tops)
        before_bytes = None
        if self.kill_now_during and kind in ("fd_write", "write_file", "append_file") and \
                (kind != "fd_write" or self.fdinfo[op[1]]["path"] is not None):
            wp = self.fdinfo[op[1]]["path"] if kind == "fd_write" else op[1]
            try:
                with open(self.model.p(wp), "rb") as f:
                    before_bytes = f.read()
            except OSError:
                before_bytes = None
        orphan = kind.startswith("fd_") and op[1] in self.fdinfo and self.fdinfo[op[1]]["path"] is None
        rl = self.apply(self.model, op)
        after = self.subtree(tops)
        self.count_features(op, rl, before, orphan)
        if kind == "open" and rl[0] == "ok":
            flags = op[3]
            acc = flags & os.O_ACCMODE
            self.fdinfo[op[1]] = {"path": op[2], "flags": flags, "writable": acc != os.O_RDONLY,
                                  "readable": acc != os.O_WRONLY, "wrote": bool(flags & os.O_TRUNC)}
        if kind in ("rmdir", "rename") and rl[0] == "ok":
            self.orphans_follow(op, before)
        if kind == "unlink" and rl[0] == "ok":
            self.orphan_slots(op[1])
        # a file or a symlink renamed over a file orphans that file's descriptors (seed 105602: a
        # symlink's rename left them on the name, found once descriptors read their xattrs)
        if kind == "rename" and rl[0] == "ok" and before.get(op[1]) and before[op[1]][0] in ("f", "l") and \
                op[1] != op[2]:
            self.orphan_slots(op[2])
            for info in self.fdinfo.values():
                if info["path"] == op[1]:
                    info["path"] = op[2]
            if op[1] in self.history:
                self.history[op[2]] = self.history.pop(op[1])
        if kind in ("fd_write", "fd_truncate") and rl[0] == "ok":
            self.fdinfo[op[1]]["wrote"] = True
        if kind == "fd_close" and op[1] in self.fdinfo:
            closing = self.fdinfo.pop(op[1])
        else:
            closing = None
        if rl[0] == "ok":
            self.model_bookkeeping(op, before, after)
            if kind in ("utime", "rename"):
                # the new mtime lives in mtime_set, set just now: the new state carries it, so that a
                # mount that failed the utime and kept the old mtime is seen to differ from it (and
                # the model adopts the old one) instead of the model keeping an mtime never set; a
                # rename's metadata moves to the new names there too (read before, the new state of
                # a replaced directory had its old metadata: a mount that failed the rename and kept
                # that directory was taken for the new state, and the model kept the moved keys)
                after = self.subtree(tops)
        if self.kill_now_during:
            rm = self.apply_with_kill(op)
        else:
            rm = self.apply(self.mnt, op)
        self.recent.append((self.index, op, rl, rm))
        if kind == "open" and rm[0] == "ok" and rl[0] != "ok":
            _close_quietly(self.mnt.fds.pop(op[1]))
        if kind == "open" and rl[0] == "ok" and rm[0] != "ok":
            _close_quietly(self.model.fds.pop(op[1], None))
            self.fdinfo.pop(op[1], None)
        if self.killed and kind in ("fd_write", "write_file", "append_file") and rl[0] == "ok" and \
                (kind != "fd_write" or self.fdinfo[op[1]]["path"] is not None):
            self.partial_writes(op, rl, rm, before, before_bytes)
        self.check_result(op, rl, rm, before, after, closing)
        self.srv_prune()
        if self.killed:
            self.after_kill(op if self.kill_now_during else None, rl, rm, before, after)

    # bookkeeping of the model's metadata and explicit mtimes (the local fs keeps data, modes)
    def model_bookkeeping(self, op, before, after):
        kind = op[0]
        changed = [p for p in after if after[p] != before.get(p)]
        if kind == "utime":
            self.mtime_set[op[1]] = op[2]
            return
        if kind == "rename":
            src, dst = op[1], op[2]
            for d in (self.meta, self.mtime_set):
                for p in [p for p in d if under(p, dst)]:
                    del d[p]
                for p in [p for p in d if under(p, src)]:
                    d[dst + p[len(src):]] = d.pop(p)
            return
        if kind in ("unlink", "rmdir"):
            for d in (self.meta, self.mtime_set):
                for p in [p for p in d if under(p, op[1])]:
                    del d[p]
            return
        if kind in ("chmod", "chown", "fd_fchown", "setxattr", "removexattr", "commit", "stat", "read_file", "fd_read",
                    "fd_fstat", "fd_fsync", "fd_close") + FD_XATTR_OPS:
            return
        # content changes (writes, truncates, creates, O_TRUNC) end an explicit mtime
        for p in self.affected(op):
            if kind == "open" and not (op[3] & (os.O_TRUNC | os.O_CREAT)):
                continue
            self.mtime_set.pop(p, None)
        for p in changed:
            if after[p] is None:
                self.meta.pop(p, None)

    # --- comparing one operation --------------------------------------------------------------------
    killed = False
    kill_now_during = False

    def partial_writes(self, op, rl, rm, before, before_bytes):
        """A write the kill interrupted may have reached the staged file in part (the kernel splits
        writes in pages and max_write requests): those staged contents may be recovered."""
        kind = op[0]
        if kind == "fd_write":
            _, slot, off, n, dseed = op
            p = self.fdinfo[slot]["path"]
            if off is None:
                off = len(before_bytes or b"")
        else:
            _, p, n, dseed = op
            off = 0 if kind == "write_file" else len(before_bytes or b"")
        data = self.data_of(n, dseed)
        base = b"" if kind == "write_file" or before_bytes is None else before_bytes
        old = before.get(p)
        attrs = old[3:5] if old and old[0] == "f" else (0o644, ())
        if rm[0] == "ok":
            lengths = {rm[1]}
        else:
            lengths = {0, n} | {L for L in range(1, n) if (off + L) % 4096 == 0}
        states = set()
        for L in lengths:
            buf = bytearray(base)
            if len(buf) < off:
                buf.extend(b"\0" * (off - len(buf)))
            buf[off:off + L] = data[:L]
            states.add(("f", sha(bytes(buf)), len(buf)) + tuple(attrs) + (None,))
        self.history.setdefault(p, set()).update(states)
        self.srv[p] = self.srv_get(p) | states
        if rm[0] == "ok" and rm[1] != rl[1]:
            self.stats["short_writes_at_kill"] = self.stats.get("short_writes_at_kill", 0) + 1

    def check_result(self, op, rl, rm, before, after, closing):
        kind = op[0]
        if self.killed and rl[0] == "ok" and rm[0] == "ok" and rm[1] != rl[1] and kind in (
                "fd_write", "write_file", "append_file"):
            rm = ("err", errno.ECONNABORTED)  # a short write at the kill: in flight, not acknowledged
        ok_equal = rl[0] == rm[0] and (rl[1] == rm[1] if rl[0] == "ok" else errno_same(rl[1], rm[1]))
        # a name of libfuse's hidden pattern whose key is over lakeFS's limit is looked up as absent
        # (ENOENT, not ENAMETOOLONG: libfuse probes such a name to hide an open file in a deep
        # directory, README's unlink row); creating it is still ENAMETOOLONG (seed 106303, op #1543)
        if not ok_equal and rl == ("err", errno.ENAMETOOLONG) and rm == ("err", errno.ENOENT):
            ok_equal = any(isinstance(x, str) and LIBFUSE_HIDDEN.fullmatch(os.path.basename(x)) and
                           key_len(x, False) > MAX_KEY for x in op[1:])
        if kind == "fd_fstat" and rl[0] == "ok" and rm == ("err", errno.ESTALE) and \
                self.fdinfo.get(op[1], {}).get("pathless"):
            self.stats["pathless_fstat"] += 1
            return  # libfuse's limit: see orphans_follow
        if ok_equal:
            if rl[0] == "ok":
                self.server_success(op, before, after, closing)
            return
        if rm[0] == "err" and rm[1] in FAULT_ERRNOS and (self.mode == "faults" or self.killed):
            self.stats["mount_errors"] += 1
            if self.killed:
                self.server_failure(op, before, after, closing)
                return
            self.server_failure(op, before, after, closing)
            self.observe_and_adopt(op, before, after)
            return
        if rl[0] == "ok" and rm[0] == "ok":
            self.fail("results differ: model returned %r, mount returned %r" % (rl[1], rm[1]))
        self.fail("model %s, mount %s%s" % (_res(rl), _res(rm), " (at its %s)" % self.last_step if self.last_step else ""))

    def observe_and_adopt(self, op, before, after):
        """After the mount failed an operation: the mount must show, for every affected path, the old
        or the new state (never anything else); the model then takes what the mount shows."""
        if "disarm" in self.hooks:
            self.hooks["disarm"]()
        try:
            for p in sorted(set(before) | set(after)):
                got = read_mount_state(self.mnt.root, p, self.mtime_set)
                cands = {before.get(p), after.get(p)}
                if op[0] in ("write_file", "append_file") and self.last_step == "write" and p == op[1]:
                    # created or truncated, the write itself failed
                    old = before.get(p)
                    if old is None:
                        cands.add(file_state(sha(b""), 0, 0o644, {}))
                    elif old[0] == "f" and op[0] == "write_file":
                        cands.add(("f", sha(b""), 0) + old[3:])
                if not any(state_matches(c, got) for c in cands):
                    self.fail("after a failed operation (failed at its %s) %s on the mount is %s, neither old nor new: %s" % (
                        self.last_step or "only step", p, show(got), " / ".join(show(c) for c in cands)))
                if not state_matches(after.get(p), got):
                    self.adopt(p, got)
        finally:
            if "arm" in self.hooks:
                self.hooks["arm"](self.index)

    def adopt(self, rel, state):
        """Makes the model's rel hold state (read from the mount)."""
        path = self.model.p(rel)
        cur = self.local_state(rel, False)
        if cur is not None and (state is None or cur[0] != state[0]):
            for slot in sorted(self.fdinfo):
                if slot in self.fdinfo and self.fdinfo[slot]["path"] is not None and \
                        under(self.fdinfo[slot]["path"], rel):
                    self.step(("fd_close", slot), nested=True)
            if cur[0] == "d":
                shutil.rmtree(path)
            else:
                os.unlink(path)
            for d in (self.meta, self.mtime_set):
                for p in [p for p in d if under(p, rel)]:
                    del d[p]
        if state is None:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if state[0] == "d":
            os.makedirs(path, exist_ok=True)
            set_dir_attrs(path, state)
            self.set_dir_meta(rel, state)
        elif state[0] == "l":
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(state[1], path)
        else:
            with open(self.mnt.p(rel), "rb") as f:
                data = f.read()
            if sha(data) != state[1]:
                self.fail("%s changed while being read back after a failed operation: first %s, then %d bytes "
                          "sha %s" % (rel, show(state), len(data), sha(data)[:12]))
            with open(path, "r+b" if os.path.exists(path) else "wb") as f:
                f.truncate(0)
                f.write(data)
            self.set_file_attrs(rel, state[3], state[4])
            self.mtime_set.pop(rel, None)

    def set_dir_meta(self, rel, state):
        """The model's directory rel takes a directory state's user metadata."""
        meta = dir_parts(state)[3]
        if meta:
            self.meta[rel] = meta
        else:
            self.meta.pop(rel, None)

    def set_file_attrs(self, rel, mode, meta):
        """The model's file rel takes mode and a state's metadata: its owner (OWNER_KEY) on the local
        file (first: a chown clears setuid bits), the rest in self.meta."""
        meta = dict(meta)
        uid, gid = (int(x) for x in meta.pop(OWNER_KEY, "0:0").split(":"))
        os.chown(self.model.p(rel), uid, gid)
        os.chmod(self.model.p(rel), mode)
        if meta:
            self.meta[rel] = meta
        else:
            self.meta.pop(rel, None)

    # --- the server model ---------------------------------------------------------------------------
    def srv_get(self, p):
        return self.srv.get(p) or {None}

    def srv_prune(self):
        """A path that can only be absent needs no entry."""
        for p in [p for p, c in self.srv.items() if c == {None}]:
            del self.srv[p]

    def server_success(self, op, before, after, closing):
        kind = op[0]
        if kind in ("stat", "read_file", "fd_read", "commit", "fd_getxattrs"):
            return
        if kind in ("fd_write", "fd_truncate", "fd_fstat"):
            p = self.fdinfo[op[1]]["path"]
            if p is not None and kind != "fd_fstat":  # an orphan's bytes go nowhere
                self.history.setdefault(p, set()).add(after[p])
            return
        if kind == "open":
            p = op[2]
            if before.get(p) is None or op[3] & os.O_TRUNC:
                # the empty file may reach lakeFS at once, or at the upload
                self.srv[p] = self.srv_get(p) | {after[p]}
            self.history.setdefault(p, set()).add(after[p])
            return
        if kind in ("fd_fsync", "fd_close"):
            p = (closing or self.fdinfo.get(op[1]))["path"]
            if p is None:
                return  # an orphan: nothing uploads it
            if kind == "fd_close" and (not closing["writable"] or self.writable_slots(p)):
                return  # nothing uploaded (read-only, or the upload waits for the last writer)
            self.upload_acked(p, after[p])
            return
        if kind in ("write_file", "append_file", "truncate"):
            p = op[1]
            if self.writable_slots(p):
                self.srv[p] = self.srv_get(p) | {after[p]}
                self.history.setdefault(p, set()).add(after[p])
            else:
                self.upload_acked(p, after[p])
            return
        if kind in ("chmod", "chown", "fd_fchown", "utime", "setxattr", "removexattr", "fd_setxattr",
                    "fd_removexattr"):
            p = self.attr_path(op)
            if p is None:
                return  # an orphan's: nothing on the server changes
            self.srv[p] = {self.map_attr(op, c) for c in self.srv_get(p)}
            if self.writable_slots(p):
                self.history[p] = {self.map_attr(op, c) for c in self.history.get(p, set())} | {after[p]}
            return
        if kind == "rename":
            self.srv_rename(op[1], op[2], before, certain=True)
            return
        # mkdir, rmdir, unlink, symlink: the new state, at once
        for p in after:
            self.srv[p] = {after[p]}

    def upload_acked(self, p, state):
        """close/fsync returned 0: lakeFS has exactly these bytes (attributes as before, or the model's)."""
        if state is None:
            return
        self.srv[p] = {with_data(c, state) for c in self.srv_get(p)} | {state}
        self.history.pop(p, None)
        if self.writable_slots(p):
            self.history[p] = {state}

    def attr_path(self, op):
        """The path an attribute change names: its own, or its descriptor's (None: an orphan's)."""
        if op[0].startswith("fd_"):
            return (self.fdinfo.get(op[1]) or {}).get("path")
        return op[1]

    def map_attr(self, op, c):
        if c is not None and c[0] == "d":
            mode, uid, gid, meta = dir_parts(c)
            if op[0] == "chmod":
                mode = op[2] & 0o7777
            elif op[0] == "chown":
                uid, gid = op[2], op[3]
            elif op[0] == "setxattr":
                meta[op[2]] = op[3]
            elif op[0] == "removexattr":
                meta.pop(op[2], None)
            return dir_state(mode, uid, gid, meta)
        if c is None or c[0] != "f":
            return c
        _, h, size, mode, meta, mtime = c
        kind = op[0]
        if kind == "chmod":
            mode = op[2]
        elif kind == "utime":
            mtime = op[2]
        elif kind in ("chown", "fd_fchown"):
            meta = tuple(sorted(with_owner(dict(meta), op[-2], op[-1]).items()))
        elif kind in ("setxattr", "fd_setxattr"):
            meta = tuple(sorted(dict(meta, **{op[2]: op[3]}).items()))
        else:
            meta = tuple(sorted((k, v) for k, v in meta if k != op[2]))
        return ("f", h, size, mode, meta, mtime)

    def srv_rename(self, src, dst, before, certain):
        moved = {}
        for p in set(before) | set(self.srv):
            if under(p, src) and self.srv_get(p) != {None}:
                moved[dst + p[len(src):]] = self.srv_get(p)
        if certain:
            for p in [p for p in self.srv if under(p, dst)]:
                self.srv[p] = {None}
            for p in list(self.srv):
                if under(p, src):
                    self.srv[p] = {None}
            self.srv[src] = {None}
            for p, cands in moved.items():
                self.srv[p] = set(cands)
        else:
            for p, cands in moved.items():
                self.srv[p] = self.srv_get(p) | cands
            for p in list(self.srv) + [src]:
                if under(p, src):
                    self.srv[p] = self.srv_get(p) | {None}

    def server_failure(self, op, before, after, closing):
        """The mount failed op (or died during it): lakeFS holds the old or the new state."""
        kind = op[0]
        if kind in ("stat", "read_file", "fd_read", "fd_fstat", "commit", "fd_getxattrs"):
            return
        if kind == "rename":
            self.srv_rename(op[1], op[2], before, certain=False)
            return
        if kind in ("chmod", "chown", "fd_fchown", "utime", "setxattr", "removexattr", "fd_setxattr",
                    "fd_removexattr"):
            p = self.attr_path(op)
            if p is None:
                return
            self.srv[p] = self.srv_get(p) | {self.map_attr(op, c) for c in self.srv_get(p)}
            return
        if kind in ("fd_write", "fd_truncate", "fd_fsync", "fd_close", "open"):
            p = (closing or self.fdinfo.get(op[1]) or {"path": op[2] if kind == "open" else None})["path"]
            if p is None:
                return
            st = after.get(p)
            if st is None or st[0] != "f":
                return
            self.history.setdefault(p, set()).add(st)
            self.srv[p] = self.srv_get(p) | {with_data(c, h) for c in self.srv_get(p) for h in self.history[p]} \
                | self.history[p]
            return
        for p in set(before) | set(after):
            extra = {after.get(p)}
            if kind in ("write_file", "append_file", "truncate") and after.get(p) and after[p][0] == "f":
                extra |= {with_data(c, after[p]) for c in self.srv_get(p)}
                extra.add(file_state(sha(b""), 0, after[p][3], dict(after[p][4])))  # O_TRUNC done, write not
            self.srv[p] = self.srv_get(p) | extra

    # --- whole-tree comparisons ---------------------------------------------------------------------
    def compare(self):
        """The mount shows exactly the model (faults disarmed while reading)."""
        self.stats["compares"] += 1
        if "disarm" in self.hooks:
            self.hooks["disarm"]()
        try:
            got = read_mount_tree(self.mnt.root, self.mtime_set)
        finally:
            if "arm" in self.hooks:
                self.hooks["arm"](self.index)
        want = self.local_tree()
        diffs = []
        for p in sorted(set(got) | set(want)):
            if not state_matches(want.get(p), got.get(p)):
                diffs.append("%s: model %s, mount %s" % (p, show(want.get(p)), show(got.get(p))))
        if diffs:
            self.fail("tree comparison: %d path(s) differ: %s\n  %s" % (len(diffs), diffs[0], "\n  ".join(diffs[1:20])))

    def check_server(self, got, where):
        """got: {path: state} read from lakeFS; every path must be in its candidate set."""
        self.stats["server_checks"] += 1
        diffs = []
        self.conflicts = getattr(self, "conflicts", set())
        for p in sorted(set(got) | {p for p, c in self.srv.items() if c != {None}}):
            cands = self.srv_get(p)
            g = got.get(p)
            if any(state_matches(c, g) for c in cands):
                continue
            if p in self.conflicts and g and g[0] == "f" and any(c[1:3] == g[1:3] for c in cands if c):
                continue  # the other client's bytes are kept (its attributes are not this test's concern)
            if g == ("d", 0o755) and any(under(q, p) and q != p and self.srv_get(q) != {None} for q in self.srv):
                continue  # a prefix of objects that may be there (no marker: 0755)
            why = ""
            if p in self.conflicts:
                why = " (another client wrote it after the kill, before the remount: the stale staged copy " \
                      "must not overwrite it)"
            diffs.append("%s: lakeFS holds %s, expected %s%s" % (p, show(g), " or ".join(sorted(show(c) for c in cands)),
                                                                 why))
        if diffs:
            self.fail("%s: %d path(s) differ from the acknowledged state: %s\n  %s" % (
                where, len(diffs), diffs[0], "\n  ".join(diffs[1:20])))

    def abandon(self):
        """Closes every descriptor on both sides without checking anything (after a Mismatch)."""
        for side in (self.model, self.mnt):
            for slot in list(side.fds):
                _close_quietly(side.fds.pop(slot))
        self.fdinfo.clear()

    def close_all(self):
        for slot in sorted(self.fdinfo):
            self.step(("fd_close", slot), nested=True)

    def reset_to(self, tree, where="after the remount (lakeFS holds the second)", from_server=False):
        """After a remount: the model becomes what lakeFS holds (checked before), srv certain. From
        the server's tree (from_server), files show the modes a new mount shows (visible())."""
        shutil.rmtree(self.model.root)
        os.makedirs(self.model.root)
        self.meta, self.mtime_set, self.history, self.srv = {}, {}, {}, {}
        for p in sorted(tree):
            s = tree[p]
            path = self.model.p(p)
            if s is None or s[0] in ("ghost", "unreadable"):
                continue
            if s[0] == "d":
                os.makedirs(path, exist_ok=True)
                set_dir_attrs(path, s)
                self.set_dir_meta(p, s)
            elif s[0] == "l":
                os.symlink(s[1], path)
            else:
                with open(self.mnt.p(p), "rb") as f:
                    data = f.read()
                if sha(data) != s[1]:
                    self.fail("%s: %s reads %s through the mount, but %s a moment before" % (
                        where, p, show(file_state(sha(data), len(data), s[3], dict(s[4]))), show(s)))
                with open(path, "wb") as f:
                    f.write(data)
                self.set_file_attrs(p, visible(s)[3] if from_server else s[3], s[4])
            self.srv[p] = {s if s[0] != "f" else s[:5] + (None,)}

    # --- kill -9 --------------------------------------------------------------------------------
    def maybe_kill(self, i):
        if self.mode != "kill":
            return
        if self.next_kill is None:
            self.next_kill = i + self.rng.randint(*self.kill_every)
        if i == self.next_kill:
            self.next_kill = None
            if self.rng.random() < self.kill_during_ratio:
                self.kill_now_during = True  # the next operation runs while the daemon dies
                self.kill_delay = self.rng.random() * 0.03
            else:
                self.killed = True
                self.after_kill(None, None, None, None, None)

    def apply_with_kill(self, op):
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", self.apply(self.mnt, op)), daemon=True)
        t.start()
        time.sleep(self.kill_delay)  # the moment of the kill (not a synchronisation)
        # SIGKILL only: the mount stays until the operation has returned (ENOTCONN), so nothing
        # can reach the directory under it; kill() then reaps and unmounts
        self.hooks["sigkill"]()
        t.join(120)
        if t.is_alive():
            self.fail("an operation on the killed mount did not return within 120 s")
        self.hooks["kill"]()
        self.killed = True
        self.stats["kills_during_op"] += 1
        return box["r"]

    def after_kill(self, op, rl, rm, before, after):
        """The daemon is dead: widen the paths with descriptors open, maybe let another client change
        one of them, remount with the same cache dir, check lakeFS and take its state as the model."""
        if not self.kill_now_during:
            self.hooks["kill"]()
        self.kill_now_during = False
        self.stats["kills"] += 1
        self.kill_seq += 1
        dirty = []
        for slot in sorted(self.fdinfo):
            info = self.fdinfo.pop(slot)
            p = info["path"]
            _close_quietly(self.mnt.fds.pop(slot, -1))
            os.close(self.model.fds.pop(slot))
            if info["writable"] and p is not None:  # an orphan's staged bytes must not come back
                hist = self.history.get(p, set()) | {self.local_state(p)}
                self.srv[p] = self.srv_get(p) | {with_data(c, h) for c in self.srv_get(p) for h in hist if h} \
                    | {h for h in hist if h}
                if info["wrote"] and self.local_state(p) is not None and p not in dirty:
                    dirty.append(p)  # an open descriptor that wrote: its staged copy is not clean
        self.history = {}
        conflict = None
        # the first kill with a staged copy always gets one: every seed that can reaches the case
        if dirty and (self.stats["conflicts"] == 0 or self.rng.random() < self.conflict_ratio):
            conflict = self.rng.choice(dirty)
            data = b"another client's bytes for %s, kill %d of seed %d\n" % (
                conflict.encode(), self.kill_seq, self.seed)
            self.hooks["conflict"](conflict, data)
            self.stats["conflicts"] += 1
            self.srv[conflict] = {file_state(sha(data), len(data), 0o644, {})}
        self.conflicts = {conflict} if conflict else set()
        self.killed = False
        self.recent.append((self.index, ("kill -9 and remount", self.kill_seq, "open for writing: %s" % ",".join(dirty),
                                         "conflict: %s" % conflict), ("ok", None), ("ok", None)))
        root = self.hooks["remount"]()
        self.mnt = Side(root, False)
        self.commit_path = os.path.join(root, ".lakefs", "commit")
        got = self.hooks["api_tree"](self.mtime_set)
        self.check_server(got, "after kill %d and the remount" % self.kill_seq)
        view = read_mount_tree(root, self.mtime_set)
        shown = visible_tree(got)  # a new mount shows no setuid/setgid/sticky bit it did not write
        diffs = ["%s: lakeFS %s, mount %s" % (p, show(shown.get(p)), show(view.get(p)))
                 for p in sorted(set(shown) | set(view)) if not state_matches(shown.get(p), view.get(p))]
        if diffs:
            self.fail("after kill %d the remount does not show what lakeFS holds:\n  %s" % (
                self.kill_seq, "\n  ".join(diffs[:20])))
        self.reset_to(got, from_server=True)


def slot_of(op):
    return op[1]


def with_data(c, state):
    """Candidate c with the data of file state `state` (None/dirs/symlinks become `state`)."""
    if state is None:
        return c
    if c is None or c[0] != "f" or state[0] != "f":
        return state
    return ("f", state[1], state[2], c[3], c[4], None)


def _close_quietly(fd):
    if fd is None or fd < 0:
        return
    try:
        os.close(fd)
    except OSError:
        pass


def _res(r):
    if r[0] == "ok":
        return "succeeded (%r)" % (r[1],)
    return "failed with %s" % errno.errorcode.get(r[1], r[1])


# --- running one seed on a fresh repository -----------------------------------------------------------

FAULT_MIX = (  # seeded ratios on every operation: together about a quarter of the requests
    {"status": 500, "message": "injected 500", "ratio": 0.07},
    {"status": 503, "message": "injected 503", "ratio": 0.06},
    {"status": 429, "message": "injected 429", "ratio": 0.05},
    {"cut_after_bytes": 7, "ratio": 0.05},
    {"latency_ms": 30, "ratio": 0.05},
)


class Faults:
    """Arms FAULT_MIX (seeded from the workload seed and a counter) while active."""

    def __init__(self, server, seed):
        self.server, self.seed, self.active, self.arms = server, seed, False, 0

    def arm(self, k=0):
        if not self.active:
            return
        self.server.clear_faults()
        self.arms += 1
        for i, fault in enumerate(FAULT_MIX):
            self.server.add_fault(operation=None, seed=self.seed * 1000003 + self.arms * 101 + i, **fault)

    def disarm(self):
        self.server.clear_faults()


def daemon_log_tail(mounts, limit=40):
    """The last `limit` warning and error lines of the seed's daemons, oldest mount first: what a rare
    mismatch needs next to its operations (a file kept aside as a conflict, an upload that failed)."""
    lines = []
    for i, m in enumerate(mounts):
        try:
            text = m.log()
        except OSError:
            continue
        lines += ["[mount %d] %s" % (i + 1, ln[:300]) for ln in text.splitlines()
                  if ": error: " in ln or ": warning: " in ln]
    return "\ndaemon log, warnings and errors (last %d of %d):\n  %s" % (
        min(limit, len(lines)), len(lines), "\n  ".join(lines[-limit:]) or "-")


# Objects another client wrote before the mount: their directories are prefixes only (no markers),
# as data written by lakectl, Spark or an SDK is; the workload then empties, renames and removes them.
SEEDED_OBJECTS = 12


def seed_objects(server, repo, model_root, seed):
    """Uploads SEEDED_OBJECTS objects (paths from the workload's names, 0 to 3 directories deep) through
    the API and writes the same files into the model (0644, directories 0755, root's). Returns the
    server model's states {path: state} of them and of their directories."""
    rng = random.Random(seed * 7919 + 17)
    files, dirs = {}, set()
    for _ in range(SEEDED_OBJECTS):
        parts = [rng.choice(DIR_NAMES) for _ in range(rng.randrange(0, 4))] + [rng.choice(NAMES)]
        path = "/".join(parts)
        above = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if path in files or path in dirs or above & set(files):
            continue
        files[path] = rng.randbytes(rng.randrange(0, 6000))
        dirs |= above
    states = {d: {dir_state(0o755)} for d in dirs}
    for path, data in sorted(files.items()):
        server.upload(repo, "main", path, data)
        local = os.path.join(model_root, path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)
        states[path] = {file_state(sha(data), len(data), 0o644, with_owner({}, 0, 0))}
    return states


def run_seed(server, make_mount, workdir, seed, nops, mode="plain", compare_every=200, report=None, min_kills=0,
             options=()):
    """One seed on a fresh repository: mount lakefs://REPO/main, run the workload, close everything,
    compare, unmount (exit status 0 but under faults), remount with an EMPTY cache dir and check what
    lakeFS holds. options: extra -o options of every mount (LAKEFUSE_DIFF_MOUNT_OPTIONS adds more).
    Returns the Workload (its stats); raises Mismatch. Deletes the repository and the local data it
    made."""
    repo = server.create_repo("diff-%s-%d-%s" % (mode, seed, os.urandom(3).hex()))
    uri = "lakefs://%s/main" % repo
    model_root = os.path.join(str(workdir), "model-%d" % seed)
    cache = os.path.join(str(workdir), "cache-%d" % seed)
    final_cache = os.path.join(str(workdir), "cache-%d-final" % seed)
    faults = Faults(server, seed)
    mounts = []
    extra = list(options) + [o for o in os.environ.get("LAKEFUSE_DIFF_MOUNT_OPTIONS", "").split(",") if o]
    plain_make = make_mount

    def make_mount(uri, cache_dir):
        return plain_make(uri, options=extra, cache_dir=cache_dir)

    w = None
    old_umask = os.umask(0o022)
    started = time.monotonic()
    try:
        seeded = seed_objects(server, repo, model_root, seed)
        m = make_mount(uri, cache_dir=cache)
        mounts.append(m)
        hooks = {}
        if mode == "faults":
            hooks.update(arm=faults.arm, disarm=faults.disarm)
        if mode == "kill":
            def kill():
                if not mounts[-1].mounted:
                    return  # already killed (resync after a mismatch)
                status = mountlib.kill_mount(mounts[-1])
                if status != -9:
                    raise Mismatch("seed %d: the killed daemon exited %r, not -9" % (seed, status))

            def remount():
                try:
                    mounts.append(make_mount(uri, cache_dir=cache))
                except mountlib.MountError as e:
                    raise Fatal("seed %d, op #%d %r: the remount after kill %d failed: %s" % (
                        seed, w.index, w.op, w.kill_seq, e))
                return mounts[-1].path

            hooks.update(kill=kill, remount=remount, sigkill=lambda: mounts[-1].proc.send_signal(9),
                         conflict=lambda path, data: server.upload(repo, "main", path, data))
        hooks["api_tree"] = lambda mt: read_api_tree(server, repo, "main", mt)
        w = Workload(seed, model_root, m.path, mode, hooks, commit_path=mountlib.control_path(m, "commit"),
                     compare_every=compare_every)
        w.min_kills = min_kills
        w.srv.update(seeded)
        faults.active = mode == "faults"
        faults.arm()
        try:
            w.run(nops)
            w.op = ("close all",)
            with w.recording():
                w.close_all()
        finally:
            faults.active = False
            faults.disarm()
        w.op = ("final comparison",)
        with w.recording():
            w.compare()
        m = mounts[-1]
        status = m.unmount()
        w.stats["unmount_status"] = status
        if mode != "faults" and status != 0:
            raise Mismatch("seed %d: the unmount after %d operations exited %r; stderr: %s" % (
                seed, nops, status, m.stderr()[-1500:]))
        again = make_mount(uri, cache_dir=final_cache)
        mounts.append(again)
        got = read_api_tree(server, repo, "main", w.mtime_set)
        try:
            w.check_server(got, "final, after the unmount")
        except Fatal:
            raise
        except Mismatch as e:
            w.mismatches.append(str(e))
        if mode == "plain":
            want = w.local_tree()
            diffs = ["%s: model %s, lakeFS %s" % (p, show(want.get(p)), show(got.get(p)))
                     for p in sorted(set(got) | set(want)) if not state_matches(want.get(p), got.get(p))]
            if diffs:
                w.mismatches.append("seed %d, final: lakeFS differs from the model:\n  %s" % (seed, "\n  ".join(diffs[:20])))
        view = read_mount_tree(again.path, w.mtime_set)
        shown = visible_tree(got)  # a new mount shows no setuid/setgid/sticky bit it did not write
        diffs = ["%s: lakeFS %s, fresh mount %s" % (p, show(shown.get(p)), show(view.get(p)))
                 for p in sorted(set(shown) | set(view)) if not state_matches(shown.get(p), view.get(p))]
        if diffs:
            w.mismatches.append("seed %d, final: a mount with an empty cache does not show what lakeFS holds:\n  %s" % (
                seed, "\n  ".join(diffs[:20])))
        status = again.unmount()
        if status != 0:
            raise Mismatch("seed %d: the final mount exited %r" % (seed, status))
        w.stats["seconds"] = round(time.monotonic() - started, 1)
        if w.mismatches:
            raise Mismatch(summary(seed, w.mismatches) + daemon_log_tail(mounts))
        return w
    except Fatal as e:
        if getattr(e, "summarised", False):
            raise
        if w is not None:
            w.mismatches.append(str(e))
        raise Mismatch(summary(seed, (w.mismatches if w is not None else [str(e)])) + daemon_log_tail(mounts))
    finally:
        os.umask(old_umask)
        faults.active = False
        faults.disarm()
        if w is not None:
            w.abandon()
        for mm in mounts:
            if mm.mounted:
                mm.unmount()
        server.api("DELETE", "/repositories/" + repo)
        for d in (model_root, cache, final_cache):
            shutil.rmtree(d, ignore_errors=True)
        if w is not None:
            w.stats["mismatches"] = len(w.mismatches)
            w.stats.setdefault("seconds", round(time.monotonic() - started, 1))
        if report is not None and w is not None:
            report(seed, w)


def summary(seed, mismatches):
    """All of a seed's mismatches: the first three in full, then one line each."""
    parts = ["seed %d: %d mismatch(es)" % (seed, len(mismatches))]
    for i, m in enumerate(mismatches):
        parts.append(m[:3500] if i < 3 else m.splitlines()[0][:400])
    return "\n".join(parts)
