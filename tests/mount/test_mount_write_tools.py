"""Everyday tools writing to a branch through the mount, checked through the lakeFS API (bytes,
sizes, lakectl's mtime and mode metadata, directory markers): cp -r of a tree with empty
directories, rsync -a (temporary file, then rename) twice, tar x, sed -i, dd conv=notrunc seek=
into an existing object, >> appends, a seeded random mix of pwrite/write/truncate/ftruncate/fsync
on several descriptors compared with the same operations on a local file, and an SQLite database
written in transactions."""
import os
import random
import sqlite3

from mountlib import (MIB, PatternStream, api_get, api_paths, api_stat, api_tree, assert_same_tree,
                      expected_mode, local_tree, read_file, run, sh, uploads, write_file)


def branch(mount, repo, *options):
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"] + list(options))


def q(path):
    return "'" + str(path).replace("'", "'\\''") + "'"


def make_local_tree(root):
    """A local tree with nested and empty directories, an empty file, a file over 1 MiB, modes
    0644/0600/0755 and whole-second mtimes (what a lakectl mtime can carry). Returns its Tree."""
    files = {
        "README": b"top level\n",
        "empty.txt": b"",
        "src/main.c": b"int main(void) { return 0; }\n" * 40,
        "src/lib/util.c": b"/* util */\n" * 500,
        "data/big.bin": PatternStream(MIB + 4321, 41).read(),
        "data/small.bin": bytes(range(256)),
        "bin/run.sh": b"#!/bin/sh\necho run\n",
        "secret/key": b"not for others\n",
    }
    modes = {"bin/run.sh": 0o755, "secret/key": 0o600}
    for d in ("empty", "deep/empty/inside", "src/lib"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for i, (rel, data) in enumerate(sorted(files.items())):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_file(path, data)
        os.chmod(path, modes.get(rel, 0o644))
        os.utime(path, (1600000000 + i * 1000, 1600000000 + i * 1000))
    os.chmod(root, 0o755)
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    tree = local_tree(root)
    assert {"empty", "deep/empty/inside"} <= tree.dirs
    return tree


def markers(server, repo, prefix):
    return {p[len(prefix):].rstrip("/") for p in api_paths(server, repo, "main", prefix) if p.endswith("/")}


def test_cp_r_of_a_tree_with_empty_directories(server, repo, mount, tmp_path):
    local = str(tmp_path / "local")
    expected = make_local_tree(local)
    m = branch(mount, repo)
    run(["cp", "-r", local, m.join("copy")])
    assert_same_tree(api_tree(server, repo, "main", "copy/"), expected, meta=False, what="API after cp -r")
    assert {"empty", "deep/empty/inside"} <= markers(server, repo, "copy/")
    assert_same_tree(local_tree(m.join("copy")), expected, meta=False, what="mount after cp -r")
    # The empty directories are on the branch, not only in this mount.
    assert m.unmount() == 0
    again = branch(mount, repo)
    assert_same_tree(local_tree(again.join("copy")), expected, meta=False, what="remount after cp -r")


def test_rsync_a_twice(server, repo, mount, tmp_path):
    local = str(tmp_path / "local")
    expected = make_local_tree(local)
    m = branch(mount, repo)
    run(["rsync", "-a", local + "/", m.join("sync") + "/"])
    # Temporary files were renamed away; mtimes and modes survived as lakectl metadata.
    assert_same_tree(api_tree(server, repo, "main", "sync/"), expected, meta=True, what="API after rsync -a")
    assert_same_tree(local_tree(m.join("sync")), expected, meta=True, what="mount after rsync -a")
    assert {"empty", "deep/empty/inside"} <= markers(server, repo, "sync/")
    # Change two files and add one: the second rsync uploads exactly those three.
    write_file(os.path.join(local, "README"), b"top level, edited\n")
    os.utime(os.path.join(local, "README"), (1700000000, 1700000000))
    big = bytearray(read_file(os.path.join(local, "data", "big.bin")))
    big[500000:500010] = b"0123456789"
    write_file(os.path.join(local, "data", "big.bin"), bytes(big))
    os.utime(os.path.join(local, "data", "big.bin"), (1700000100, 1700000100))
    write_file(os.path.join(local, "src", "new.h"), b"#define NEW 1\n")
    os.utime(os.path.join(local, "src", "new.h"), (1700000200, 1700000200))
    expected = local_tree(local)
    server.reset_counts()
    run(["rsync", "-a", local + "/", m.join("sync") + "/"])
    assert uploads(server.counts()) == 3, server.counts()
    assert_same_tree(api_tree(server, repo, "main", "sync/"), expected, meta=True, what="API after 2nd rsync")
    assert m.unmount() == 0
    again = branch(mount, repo)
    assert_same_tree(local_tree(again.join("sync")), expected, meta=True, what="remount after 2nd rsync")


def test_tar_x(server, repo, mount, tmp_path):
    local = str(tmp_path / "local")
    expected = make_local_tree(local)
    tarball = str(tmp_path / "tree.tar")
    run(["tar", "-C", local, "-cf", tarball, "."])
    m = branch(mount, repo)
    os.mkdir(m.join("untar"))
    run(["tar", "--no-same-owner", "-C", m.join("untar"), "-xf", tarball])
    assert_same_tree(api_tree(server, repo, "main", "untar/"), expected, meta=True, what="API after tar x")
    assert {"empty", "deep/empty/inside"} <= markers(server, repo, "untar/")
    assert_same_tree(local_tree(m.join("untar")), expected, meta=True, what="mount after tar x")
    # tar set every file's times: the mount keeps each (sub-second mtime, atime, ctime), none forgotten
    times = m.stats()["times"]
    assert times["entries"] >= len(expected.files) > 0 and times["evicted"] == 0, (times, len(expected.files))


def test_sed_i(server, repo, mount):
    text = b"".join(b"line %d: foo bar foo\n" % i for i in range(200))
    server.upload(repo, "main", "conf/app.conf", text)
    server.upload(repo, "main", "conf/other.conf", b"untouched foo\n")
    m = branch(mount, repo)
    os.chmod(m.join("conf", "app.conf"), 0o600)
    run(["sed", "-i", "s/foo/baz/g; /line 7:/d", m.join("conf", "app.conf")])
    want = b"".join(b"line %d: baz bar baz\n" % i for i in range(200) if i != 7)
    assert api_get(server, repo, "main", "conf/app.conf") == want
    assert read_file(m.join("conf", "app.conf")) == want
    # sed's temporary file was renamed over the original: nothing else on the branch, mode kept.
    assert [p for p in api_paths(server, repo, "main", "conf/") if not p.endswith("/")] == \
        ["conf/app.conf", "conf/other.conf"]
    assert expected_mode(api_stat(server, repo, "main", "conf/app.conf")) == 0o600
    assert sorted(os.listdir(m.join("conf"))) == ["app.conf", "other.conf"]
    assert api_get(server, repo, "main", "conf/other.conf") == b"untouched foo\n"


def test_dd_conv_notrunc_seek_into_existing_objects(server, repo, mount, tmp_path):
    base = PatternStream(3 * MIB + 5, 51).read()
    server.upload(repo, "main", "disk.img", base)
    server.upload(repo, "main", "grow.img", base)
    server.commit(repo, "main", "images")
    patch = random.Random(52).randbytes(200 * 1024)
    patch_path = str(tmp_path / "patch")
    write_file(patch_path, patch)
    m = branch(mount, repo)
    run(["dd", "if=" + patch_path, "of=" + m.join("disk.img"), "bs=4096", "seek=300", "conv=notrunc",
         "status=none"])
    off = 300 * 4096
    want = base[:off] + patch + base[off + len(patch):]
    assert api_get(server, repo, "main", "disk.img") == want
    assert read_file(m.join("disk.img")) == want
    # Past the end: a hole of zeros, then the patch.
    run(["dd", "if=" + patch_path, "of=" + m.join("grow.img"), "bs=1M", "seek=4", "conv=notrunc",
         "status=none"])
    want = base + bytes(4 * MIB - len(base)) + patch
    assert api_stat(server, repo, "main", "grow.img")["size_bytes"] == len(want)
    assert api_get(server, repo, "main", "grow.img") == want


def test_shell_appends(server, repo, mount):
    server.upload(repo, "main", "logs/app.log", b"started\n")
    m = branch(mount, repo)
    want = b"started\n"
    for i in range(8):
        sh("echo 'event %d' >> %s" % (i, q(m.join("logs", "app.log"))))
        want += b"event %d\n" % i
    assert api_get(server, repo, "main", "logs/app.log") == want
    for i in range(3):
        sh("printf 'x%%d\\n' %d >> %s" % (i, q(m.join("logs", "new.log"))))
    assert api_get(server, repo, "main", "logs/new.log") == b"x0\nx1\nx2\n"
    assert read_file(m.join("logs", "app.log")) == want


# --- random I/O against a local model ---------------------------------------------------------------

def random_io(root, seed, ops=300):
    """Runs a seeded mix of operations on three files under root with up to three descriptors each
    (some O_APPEND); returns everything the operations read back. The sequence depends only on the
    seed, so two roots that behave like POSIX files give equal results."""
    rng = random.Random(seed)
    names = ["r0.bin", "r1.bin", "r2.bin"]
    fds = {name: [] for name in names}
    observed = []

    def open_one(name):
        append = rng.random() < 0.25
        flags = os.O_RDWR | os.O_CREAT | (os.O_APPEND if append else 0)
        fds[name].append((os.open(os.path.join(root, name), flags, 0o644), append))

    try:
        for name in names:
            open_one(name)
            open_one(name)
        for i in range(ops):
            name = rng.choice(names)
            fd, append = rng.choice(fds[name])
            op = rng.random()
            if op < 0.40:
                data = rng.randbytes(rng.randint(1, 70000))
                if append:
                    os.write(fd, data)
                else:
                    os.pwrite(fd, data, rng.randint(0, 300000))
            elif op < 0.48:
                os.ftruncate(fd, rng.randint(0, 250000))
            elif op < 0.52:
                os.truncate(os.path.join(root, name), rng.randint(0, 250000))
            elif op < 0.72:
                observed.append((i, "pread", os.pread(fd, rng.randint(1, 100000), rng.randint(0, 300000))))
            elif op < 0.80:
                observed.append((i, "size", os.fstat(fd).st_size, os.stat(os.path.join(root, name)).st_size))
            elif op < 0.84:
                os.fsync(fd)
            elif op < 0.92:
                if len(fds[name]) < 3:
                    open_one(name)
            elif len(fds[name]) > 1:
                fd, _ = fds[name].pop(rng.randrange(len(fds[name])))
                os.close(fd)
    finally:
        for name in names:
            for fd, _ in fds[name]:
                os.close(fd)
    for name in names:
        observed.append(("final", name, read_file(os.path.join(root, name))))
    return observed


def test_random_writes_and_truncates_match_a_local_file(server, repo, mount, tmp_path):
    local = tmp_path / "model"
    local.mkdir()
    m = branch(mount, repo)
    want = random_io(str(local), 7)
    got = random_io(m.path, 7)
    for w, g in zip(want, got):
        assert g == w, "first difference at %r" % (w[:2],)
    assert len(got) == len(want)
    for name in ("r0.bin", "r1.bin", "r2.bin"):
        assert api_get(server, repo, "main", name) == read_file(str(local / name)), name


# --- SQLite -----------------------------------------------------------------------------------------

def sqlite_rows(path):
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return con.execute("SELECT id, name, n, blob FROM items ORDER BY id").fetchall()
    finally:
        con.close()


def test_sqlite_database_written_in_transactions(server, repo, mount, tmp_path):
    m = branch(mount, repo)
    os.mkdir(m.join("db"))
    path = m.join("db", "app.sqlite")
    rng = random.Random(61)
    expected, next_id = {}, 1
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, blob BLOB)")
        con.commit()
        for tx in range(5):
            with con:  # one transaction
                for _ in range(150):
                    row = (next_id, "item-%d-%d" % (tx, next_id), rng.randint(0, 10 ** 6),
                           rng.randbytes(rng.randint(0, 3000)))
                    next_id += 1
                    con.execute("INSERT INTO items VALUES (?, ?, ?, ?)", row)
                    expected[row[0]] = row
                for rid in rng.sample(sorted(expected), 40):
                    n = rng.randint(0, 10 ** 6)
                    con.execute("UPDATE items SET n = ? WHERE id = ?", (n, rid))
                    expected[rid] = expected[rid][:2] + (n,) + expected[rid][3:]
                for rid in rng.sample(sorted(expected), 10):
                    con.execute("DELETE FROM items WHERE id = ?", (rid,))
                    del expected[rid]
        # A transaction rolled back leaves nothing behind.
        try:
            with con:
                con.execute("INSERT INTO items VALUES (?, ?, ?, ?)", (10 ** 6, "rolled back", 0, b""))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    finally:
        con.close()
    want = [expected[k] for k in sorted(expected)]
    assert sqlite_rows(path) == want  # reopened through the mount
    # The branch holds the database and nothing else (the rollback journal is gone).
    assert [p for p in api_paths(server, repo, "main", "db/") if not p.endswith("/")] == ["db/app.sqlite"]
    copy = str(tmp_path / "from-api.sqlite")
    write_file(copy, api_get(server, repo, "main", "db/app.sqlite"))
    assert sqlite_rows(copy) == want
    assert m.unmount() == 0
    again = branch(mount, repo)
    assert sqlite_rows(again.join("db", "app.sqlite")) == want


def test_fallocate_allocates_punches_and_zeroes_like_a_local_file(server, repo, mount, tmp_path):
    """util-linux fallocate on the mount and on a local file side by side: mode 0 grows a new file
    with zeros, --punch-hole and --zero-range zero a range of an object (its mode and user metadata
    kept), --keep-size alone changes nothing (no upload), --collapse-range is refused
    (EOPNOTSUPP) with the file untouched; lakeFS holds what the local file holds after each close."""
    m = branch(mount, repo)
    local = str(tmp_path / "local.bin")
    data = PatternStream(3 * 65536 + 123, 7).read()
    write_file(m.join("f.bin"), data)
    write_file(local, data)
    os.chmod(m.join("f.bin"), 0o640)
    os.setxattr(m.join("f.bin"), "user.lakefs.meta.owner", b"team-a")

    def both(*args, ok=True):
        got = [run(["fallocate"] + list(args) + [p], ok=False) for p in (m.join("f.bin"), local)]
        for r in got:
            assert (r.returncode == 0) == ok, (args, r.returncode, r.stderr)
        return got

    def same(what):
        want = read_file(local)
        assert read_file(m.join("f.bin")) == want, what
        assert os.stat(m.join("f.bin")).st_size == len(want), what
        assert api_get(server, repo, "main", "f.bin") == want, what
        st = api_stat(server, repo, "main", "f.bin")
        assert st["size_bytes"] == len(want), what
        assert (st.get("metadata") or {}).get("owner") == "team-a", (what, st.get("metadata"))
        assert os.stat(m.join("f.bin")).st_mode & 0o7777 == 0o640, what

    both("--punch-hole", "--offset", "4096", "--length", "70000")
    same("after --punch-hole")
    both("--zero-range", "--offset", "150000", "--length", "300000")  # past the end: the file grows
    same("after --zero-range")
    server.reset_counts()
    both("--keep-size", "--offset", "0", "--length", str(4 * MIB))
    same("after --keep-size")
    assert uploads(server.counts()) == 0, server.counts()
    refused = run(["fallocate", "--collapse-range", "--offset", "0", "--length", "4096", m.join("f.bin")], ok=False)
    assert refused.returncode != 0 and b"not supported" in refused.stderr, (refused.returncode, refused.stderr)
    same("after a refused --collapse-range")
    # mode 0 on a new file: zeros of the length, uploaded at close
    run(["fallocate", "--length", str(MIB + 5), m.join("new.bin")])
    assert api_get(server, repo, "main", "new.bin") == bytes(MIB + 5)
    assert os.stat(m.join("new.bin")).st_size == MIB + 5
