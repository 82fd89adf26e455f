"""POSIX semantics a program can rely on (issue 11): names over NAME_MAX and keys over lakeFS's
limit answer ENAMETOOLONG up front; modes, owners and times are kept as set (create modes exactly,
setuid bits only from this mount, ctime on attribute changes, futimens before close, sub-second
times and atime for the life of the mount, directories' mode/owner/mtime on their markers); inode
numbers stay put for the life of a mount; symlinks list only attributes that can be read;
directories count their subdirectories in st_nlink; and every refusal has the errno POSIX names.
Every test works on a fresh repository (the `repo` fixture)."""
import errno
import json
import os
import socket
import stat
import subprocess

import pytest

from mountlib import (api_get, api_metadata, api_paths, api_stat, api_stat_or_none, errno_as_user, expect_errno,
                      mount_options, read_file, write_file)

PERMISSIONS_KEY = "::lakefs::posix-permissions"
MTIME_KEY = "::lakefs::client-mtime"


def branch(mount, repo, *options, ref="main"):
    return mount("lakefs://%s/%s" % (repo, ref), options=["attr_timeout=3600"] + list(options))


def drop_kernel_caches():
    """Makes the kernel forget its dentries and inodes (FUSE sends FORGET for them)."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


# --- names ---------------------------------------------------------------------------------------------

def test_component_over_255_bytes_is_enametoolong_on_every_call(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("f"), b"x")
    os.mkdir(m.join("d"))
    long_name = "n" * 256
    p = m.join(long_name)
    deep = m.join("d", long_name, "child")
    for fn, args in [(os.stat, (p,)), (os.lstat, (deep,)), (os.open, (p, os.O_WRONLY | os.O_CREAT, 0o644)),
                     (os.mkdir, (p,)), (os.symlink, ("f", p)), (os.rename, (m.join("f"), p)),
                     (os.rename, (p, m.join("g"))), (os.unlink, (p,)), (os.rmdir, (p,)), (os.chmod, (p, 0o600)),
                     (os.truncate, (p, 0)), (os.utime, (p, (1, 1))), (os.listdir, (deep,)),
                     (os.readlink, (p,)), (os.link, (m.join("f"), p)), (os.mkfifo, (p,))]:
        expect_errno(errno.ENAMETOOLONG, fn, *args)
    # 255 bytes is a name like any other.
    ok = m.join("d", "m" * 255)
    write_file(ok, b"255")
    assert read_file(ok) == b"255"
    assert api_get(server, repo, "main", "d/" + "m" * 255) == b"255"


def test_key_over_lakefs_limit_is_refused_at_create_not_at_close(server, repo, mount):
    """lakeFS refuses object paths over 1024 bytes (catalog.MaxPathLength): the mount says so when
    the name is made, never with a create that succeeds and a close that fails."""
    m = branch(mount, repo)
    dirs = ["a" * 250, "b" * 250, "c" * 250, "d" * 250]  # "aaa/bbb/ccc/ddd" = 1003 bytes
    path = m.join(*dirs)
    os.makedirs(path)
    prefix = "/".join(dirs) + "/"
    fits = "e" * (1024 - len(prefix))
    write_file(os.path.join(path, fits), b"fits")
    assert api_get(server, repo, "main", prefix + fits) == b"fits"
    too_long = os.path.join(path, fits + "f")
    expect_errno(errno.ENAMETOOLONG, os.open, too_long, os.O_WRONLY | os.O_CREAT, 0o644)
    expect_errno(errno.ENAMETOOLONG, os.symlink, "x", too_long)
    expect_errno(errno.ENAMETOOLONG, os.rename, os.path.join(path, fits), too_long)
    # A directory's marker is "name/": a name of exactly 1024 bytes cannot hold one.
    expect_errno(errno.ENAMETOOLONG, os.mkdir, os.path.join(path, fits[:-1] + "g"))
    os.mkdir(os.path.join(path, fits[:-2]))
    # Renaming a directory whose objects would outgrow the limit moves nothing.
    os.mkdir(m.join("short"))
    write_file(m.join("short", "x" * 200), b"deep")
    expect_errno(errno.ENAMETOOLONG, os.rename, m.join("short"), os.path.join(path, "s" * 20))
    assert read_file(m.join("short", "x" * 200)) == b"deep"
    assert sorted(api_paths(server, repo, "main", "short/")) == ["short/", "short/" + "x" * 200]
    assert not os.path.exists(too_long)


# --- statfs ------------------------------------------------------------------------------------------

def test_statfs_reports_the_cache_directorys_space(server, repo, mount):
    """df on the mount: the size, free space and inodes of the cache directory's file system (where a
    written file is staged until its upload), not zeros that make space-checking tools refuse it."""
    m = branch(mount, repo)
    got, cache = os.statvfs(m.path), os.statvfs(m.cache_dir)
    assert got.f_namemax == 255
    assert (got.f_frsize, got.f_blocks, got.f_files) == (cache.f_frsize, cache.f_blocks, cache.f_files)
    assert got.f_blocks > 0 and got.f_bavail > 0
    assert abs(got.f_bavail - cache.f_bavail) * cache.f_frsize < 256 * 1024 * 1024  # moved little between calls
    df = subprocess.run(["df", "-P", "-k", m.path], check=True, capture_output=True, text=True).stdout
    size_kib = int(df.splitlines()[1].split()[1])
    assert size_kib == cache.f_blocks * cache.f_frsize // 1024, df


# --- inode numbers -------------------------------------------------------------------------------------

def test_inode_numbers_are_kept_while_in_use_and_across_a_rename(server, repo, mount):
    m = branch(mount, repo)
    os.makedirs(m.join("d", "e"))
    write_file(m.join("d", "e", "f"), b"1")
    write_file(m.join("g"), b"2")
    before = {p: os.lstat(m.join(*p.split("/"))).st_ino for p in ["d", "d/e", "d/e/f", "g"]}
    assert len(set(before.values())) == 4
    fd = os.open(m.join("g"), os.O_RDONLY)  # in use: the kernel keeps it
    try:
        assert {p: os.lstat(m.join(*p.split("/"))).st_ino for p in before} == before
        os.rename(m.join("g"), m.join("d", "h"))
        assert os.lstat(m.join("d", "h")).st_ino == before["g"] == os.fstat(fd).st_ino
        drop_kernel_caches()
        assert os.lstat(m.join("d", "h")).st_ino == before["g"]  # held open: not forgotten
    finally:
        os.close(fd)
    # find sees the same numbers as stat.
    now = {p: os.lstat(m.join(*p.split("/"))).st_ino for p in ["d/e/f", "d/h"]}
    out = subprocess.run(["find", m.path, "-printf", "%i %P\n"], check=True, capture_output=True,
                         text=True).stdout
    found = dict(reversed(line.split(" ", 1)) for line in out.splitlines() if line.split(" ", 1)[1])
    assert int(found["d/e/f"]) == now["d/e/f"] and int(found["d/h"]) == now["d/h"]


def test_a_rename_onto_a_name_another_client_deleted_after_the_kernel_forgot_it(server, repo, mount):
    """The kernel looked a file up, forgot it (cache eviction), another client deleted it, and a
    rename through the mount goes onto its name (mv, rsync's temporary file). libfuse kept a node
    for the name the kernel forgot (its remember option, on until 2026-12-05) and aborted the
    daemon on that rename (fuse.c unlink_node: Assertion `node->nlookup > 1'). Now the rename is
    done, the daemon lives on, and a user's -o remember cannot bring it back."""
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=0", "remember=3600"])
    write_file(m.join("y"), b"old y\n")
    write_file(m.join("x"), b"new y\n")
    os.stat(m.join("y"))
    drop_kernel_caches()
    resp = server.api("DELETE", "/repositories/%s/branches/main/objects" % repo, params={"path": "y"})
    assert resp.status_code == 204, resp.text
    os.rename(m.join("x"), m.join("y"))
    assert read_file(m.join("y")) == b"new y\n"
    assert sorted(os.listdir(m.path)) == ["y"]
    assert api_get(server, repo, "main", "y") == b"new y\n"
    assert "Assertion" not in m.stderr()


# --- symlinks' attributes, refusals --------------------------------------------------------------------

def test_attributes_listed_on_a_symlink_can_be_read(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("f"), b"x")
    os.symlink("f", m.join("l"))
    names = os.listxattr(m.join("l"), follow_symlinks=False)
    for name in names:
        os.getxattr(m.join("l"), name, follow_symlinks=False)  # raises if listed but unreadable
    out = subprocess.run(["getfattr", "-h", "-d", "-m", "-", m.join("l")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # The target's attributes are still there through the link.
    assert "user.lakefs.checksum" in os.listxattr(m.join("l"))
    os.getxattr(m.join("l"), "user.lakefs.checksum")


def test_refusals_have_the_errnos_posix_names(server, repo, mount):
    m = branch(mount, repo, "allow_other")  # so an unprivileged process may use the mount
    write_file(m.join("f"), b"x")
    expect_errno(errno.EPERM, os.link, m.join("f"), m.join("hard"))
    fd = os.open(m.join("f"), os.O_RDONLY)  # opened by root, used by a child that gave root up
    try:
        assert errno_as_user(65534, os.fchown, fd, 65534, -1) == errno.EPERM
    finally:
        os.close(fd)
    assert sorted(os.listdir(m.path)) == ["f"]
    assert api_paths(server, repo, "main") == ["f"]


# --- special files -------------------------------------------------------------------------------------

RDEV_KEY = "lakefuse-rdev"


def make_specials(m):
    """A fifo, a character and a block device and a Unix socket: what mkfifo, mknod and bind make."""
    os.mkfifo(m.join("fifo"), 0o640)
    os.mknod(m.join("chr"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(m.join("blk"), 0o640 | stat.S_IFBLK, os.makedev(7, 2))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(m.join("sock"))
    finally:
        sock.close()


SPECIALS = {"fifo": (stat.S_IFIFO, 0o640, None), "chr": (stat.S_IFCHR, 0o600, (1, 3)),
            "blk": (stat.S_IFBLK, 0o640, (7, 2)), "sock": (stat.S_IFSOCK, None, None)}


def assert_specials(m, names=SPECIALS):
    for name in names:
        kind, perm, dev = SPECIALS[name]
        st = os.lstat(m.join(name))
        assert stat.S_IFMT(st.st_mode) == kind, (name, oct(st.st_mode))
        if perm is not None:
            assert stat.S_IMODE(st.st_mode) == perm, (name, oct(st.st_mode))
        assert st.st_size == 0
        if dev:
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == dev, name


def test_fifos_sockets_and_device_nodes_are_empty_objects_with_their_type(server, repo, mount):
    """mkfifo, mknod and bind make an empty object whose posix-permissions Mode is the raw st_mode,
    type included (lakectl's format); a device's number goes in the lakefuse-rdev user metadata. They
    keep their type through chmod, rename and a new mount, and a fifo carries data between processes
    (the kernel serves it)."""
    m = branch(mount, repo, "allow_other")
    make_specials(m)
    assert_specials(m)
    for name, (kind, perm, dev) in SPECIALS.items():
        assert api_stat(server, repo, "main", name)["size_bytes"] == 0
        mode = recorded_mode(server, repo, name)
        assert stat.S_IFMT(mode) == kind, (name, oct(mode))
        if perm is not None:
            assert stat.S_IMODE(mode) == perm
        meta = api_metadata(server, repo, "main", name)
        assert meta.get(RDEV_KEY) == (str(os.makedev(*dev)) if dev else None), (name, meta)
    # What tools show.
    listed = subprocess.run(["ls", "-l", m.path], check=True, capture_output=True, text=True).stdout
    kinds = {line.split()[-1]: line[0] for line in listed.splitlines()[1:]}
    assert kinds == {"blk": "b", "chr": "c", "fifo": "p", "sock": "s"}, listed
    found = subprocess.run(["find", m.path, "-type", "p"], check=True, capture_output=True, text=True).stdout
    assert found.split() == [m.join("fifo")]
    # A fifo works: the kernel carries the bytes, nothing reaches lakeFS.
    got = []
    reader = subprocess.Popen(["cat", m.join("fifo")], stdout=subprocess.PIPE)
    with open(m.join("fifo"), "wb") as w:
        w.write(b"through the pipe\n")
    got.append(reader.communicate(timeout=30)[0])
    assert got == [b"through the pipe\n"]
    assert api_stat(server, repo, "main", "fifo")["size_bytes"] == 0
    # chmod, chown and rename keep the type.
    os.chmod(m.join("fifo"), 0o604)
    os.chown(m.join("chr"), 1234, 5678)
    os.rename(m.join("blk"), m.join("blk2"))
    assert stat.S_ISFIFO(os.lstat(m.join("fifo")).st_mode)
    assert stat.S_IMODE(os.lstat(m.join("fifo")).st_mode) == 0o604
    assert recorded_mode(server, repo, "fifo") == stat.S_IFIFO | 0o604
    perms = json.loads(api_metadata(server, repo, "main", "chr")[PERMISSIONS_KEY])
    assert (perms["UID"], perms["GID"], perms["Mode"]) == (1234, 5678, stat.S_IFCHR | 0o600)
    assert api_metadata(server, repo, "main", "chr")[RDEV_KEY] == str(os.makedev(1, 3))
    assert api_stat_or_none(server, repo, "main", "blk") is None
    st = os.lstat(m.join("blk2"))
    assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 2)
    # Another mount reads them back from the listing.
    m.unmount()
    m2 = branch(mount, repo)
    os.rename(m2.join("blk2"), m2.join("blk"))
    SPECIALS_NOW = dict(SPECIALS, fifo=(stat.S_IFIFO, 0o604, None))
    for name, (kind, perm, dev) in SPECIALS_NOW.items():
        st = os.lstat(m2.join(name))
        assert stat.S_IFMT(st.st_mode) == kind, name
        assert perm is None or stat.S_IMODE(st.st_mode) == perm, name
        assert not dev or (os.major(st.st_rdev), os.minor(st.st_rdev)) == dev, name
    assert os.lstat(m2.join("chr")).st_uid == 1234
    # unlink removes them; a regular file can take a special file's name.
    for name in SPECIALS:
        os.unlink(m2.join(name))
    assert api_paths(server, repo, "main") == []
    os.mkfifo(m2.join("p"))
    os.unlink(m2.join("p"))
    write_file(m2.join("p"), b"regular now")
    assert stat.S_ISREG(os.lstat(m2.join("p")).st_mode)
    assert read_file(m2.join("p")) == b"regular now"


def test_tar_and_rsync_copy_fifos_into_the_mount(server, repo, mount, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(str(src / "queue"))
    os.chmod(str(src / "queue"), 0o620)  # past the umask
    (src / "data.txt").write_bytes(b"payload")
    m = branch(mount, repo)
    os.mkdir(m.join("t"))
    subprocess.run("tar -C %s -cf - . | tar -C %s -xf -" % (src, m.join("t")), shell=True, check=True)
    subprocess.run(["rsync", "-a", "--specials", str(src) + "/", m.join("r")], check=True)
    for d in ("t", "r"):
        st = os.lstat(m.join(d, "queue"))
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620, (d, oct(st.st_mode))
        assert read_file(m.join(d, "data.txt")) == b"payload"
        assert recorded_mode(server, repo, d + "/queue") == stat.S_IFIFO | 0o620


def test_a_device_node_from_lakefs_never_opens_a_device_even_with_o_dev(server, repo, mount):
    """A device node is whatever an object's metadata says: the mount is nodev whatever options it is
    given, so one naming /dev/null's numbers (or a disk's) opens nothing."""
    headers = {"X-Lakefs-Internal-Posix-Permissions": json.dumps({"UID": 0, "GID": 0, "Mode": stat.S_IFCHR | 0o666}),
               "X-Lakefs-Meta-" + RDEV_KEY: str(os.makedev(1, 3))}
    server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": "null"}, data=b"",
               headers=headers)
    m = branch(mount, repo, "dev")
    assert "nodev" in mount_options(m.path)
    st = os.lstat(m.join("null"))
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    expect_errno(errno.EACCES, os.open, m.join("null"), os.O_WRONLY)


def test_an_object_with_bytes_is_a_regular_file_whatever_its_mode_says(server, repo, mount):
    """Only an empty object can be a special file: bytes stored under a name stay readable. A device
    number that is not a decimal number is 0."""
    for path, mode, data, extra in [("data", stat.S_IFIFO | 0o644, b"bytes", {}),
                                    ("dev", stat.S_IFCHR | 0o600, b"", {"X-Lakefs-Meta-" + RDEV_KEY: "x1"}),
                                    ("dir", stat.S_IFDIR | 0o755, b"", {})]:
        headers = {"X-Lakefs-Internal-Posix-Permissions": json.dumps({"UID": 0, "GID": 0, "Mode": mode})}
        headers.update(extra)
        server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": path}, data=data,
                   headers=headers)
    m = branch(mount, repo)
    assert stat.S_ISREG(os.lstat(m.join("data")).st_mode)
    assert read_file(m.join("data")) == b"bytes"
    st = os.lstat(m.join("dev"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_ISREG(os.lstat(m.join("dir")).st_mode)


# --- modes ---------------------------------------------------------------------------------------------

def recorded_mode(server, repo, path):
    return json.loads(api_metadata(server, repo, "main", path)[PERMISSIONS_KEY])["Mode"]


def test_create_mode_is_kept_exactly_in_lakectls_format(server, repo, mount):
    m = branch(mount, repo)
    modes = {"zero": 0o000, "plain": 0o644, "suid": 0o4755, "sgid": 0o2750, "sticky": 0o1644}
    old = os.umask(0)
    try:
        for name, mode in modes.items():
            os.close(os.open(m.join(name), os.O_WRONLY | os.O_CREAT, mode))
    finally:
        os.umask(old)
    for name, mode in modes.items():
        assert stat.S_IMODE(os.stat(m.join(name)).st_mode) == mode, name
        # lakectl's Mode is the raw st_mode: S_IFREG included (pkg/local/posix_permissions_linux.go).
        assert recorded_mode(server, repo, name) == stat.S_IFREG | mode, name
    # A file whose metadata never recorded a mode is 0644.
    server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": "bare"}, data=b"b")
    # Another mount did not write the special bits: it shows them masked; the rest as recorded.
    other = branch(mount, repo)
    shown = {name: stat.S_IMODE(os.stat(other.join(name)).st_mode) for name in modes}
    assert shown == {"zero": 0, "plain": 0o644, "suid": 0o755, "sgid": 0o750, "sticky": 0o644}
    assert stat.S_IMODE(os.stat(other.join("bare")).st_mode) == 0o644
    # ...until it sets them itself.
    os.chmod(other.join("suid"), 0o4711)
    assert stat.S_IMODE(os.stat(other.join("suid")).st_mode) == 0o4711
    assert recorded_mode(server, repo, "suid") == stat.S_IFREG | 0o4711


def test_setuid_bits_from_object_metadata_are_not_shown(server, repo, mount):
    for path, mode in [("planted", 0o104755), ("sgid", 0o102755), ("plain", 0o100750)]:
        server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": path}, data=b"#!",
                   headers={"X-Lakefs-Internal-Posix-Permissions": json.dumps({"UID": 0, "GID": 0, "Mode": mode})})
    m = branch(mount, repo)
    assert stat.S_IMODE(os.stat(m.join("planted")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(m.join("sgid")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(m.join("plain")).st_mode) == 0o750
    listed = subprocess.run(["ls", "-l", m.path], check=True, capture_output=True, text=True).stdout
    assert "rws" not in listed and "r-s" not in listed, listed


def test_setuid_bits_this_mount_did_not_write_stay_hidden_while_the_file_is_written(server, repo, mount):
    # Found by the differential test (kill seed 124401): a listing fetched while the file was open for
    # writing merged in the staged copy's mode, which keeps the bits the object records (its upload
    # must not drop them), unmasked; a rename then took them for this mount's own and showed them for
    # good (0o4755 here on the previous build).
    server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": "d/planted"}, data=b"#!",
               headers={"X-Lakefs-Internal-Posix-Permissions": json.dumps({"UID": 0, "GID": 0, "Mode": 0o104755})})
    m = branch(mount, repo)
    fd = os.open(m.join("d", "planted"), os.O_RDWR | os.O_APPEND)
    try:
        os.write(fd, b"echo\n")
        # A reset drops the branch's cached listings (a commit would upload the file first).
        server.upload(repo, "main", "other", b"another client's")
        write_file(m.join(".lakefs", "reset"), b"other")
        os.stat(m.join("d"))
        assert stat.S_IMODE(os.stat(m.join("d", "planted")).st_mode) == 0o755
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o755
        # (no program run here: the descriptor's copy closed at its exec would upload the file)
        os.rename(m.join("d", "planted"), m.join("d", "moved"))
        assert stat.S_IMODE(os.stat(m.join("d", "moved")).st_mode) == 0o755
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(m.join("d", "moved")).st_mode) == 0o755
    listed = subprocess.run(["ls", "-l", m.join("d")], check=True, capture_output=True, text=True).stdout
    assert "rws" not in listed and "moved" in listed, listed
    # The object keeps what it recorded: the edit and the rename drop no bit.
    assert recorded_mode(server, repo, "d/moved") == stat.S_IFREG | 0o4755
    assert api_get(server, repo, "main", "d/moved") == b"#!echo\n"


# --- times ---------------------------------------------------------------------------------------------

def test_cp_a_keeps_the_time_set_before_close(server, repo, mount, tmp_path):
    m = branch(mount, repo)
    src = m.join("src")
    write_file(src, b"content\n" * 1000)
    subprocess.run(["touch", "-d", "@1700000000", src], check=True)
    subprocess.run(["cp", "-a", src, m.join("dst")], check=True)
    local = tmp_path / "local"
    write_file(str(local), b"local\n")
    subprocess.run(["touch", "-d", "@1600000000.25", str(local)], check=True)
    subprocess.run(["cp", "-a", str(local), m.join("fromlocal")], check=True)
    for name, when in [("src", 1700000000), ("dst", 1700000000), ("fromlocal", 1600000000)]:
        out = subprocess.run(["stat", "-c", "%Y", m.join(name)], check=True, capture_output=True, text=True)
        assert int(out.stdout) == when, name
        assert api_metadata(server, repo, "main", name)[MTIME_KEY] == str(when), name
    assert os.stat(m.join("fromlocal")).st_mtime_ns == 1600000000250000000
    other = branch(mount, repo)
    assert int(os.stat(other.join("dst")).st_mtime) == 1700000000


def test_subsecond_mtime_and_atime_are_kept_for_the_mount(server, repo, mount):
    m = branch(mount, repo)
    f = m.join("f")
    write_file(f, b"x")
    os.utime(f, ns=(1500000000123456789, 1700000000987654321))
    st = os.stat(f)
    assert st.st_mtime_ns == 1700000000987654321 and st.st_atime_ns == 1500000000123456789
    # Visible to readdirplus too (ls/find read the listing's attributes).
    out = subprocess.run(["find", m.path, "-name", "f", "-printf", "%T@ %A@\n"], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == ["1700000000.9876543210", "1500000000.1234567890"]
    # lakectl's client-mtime holds seconds only.
    assert api_metadata(server, repo, "main", "f")[MTIME_KEY] == "1700000000"
    # A same-second change of the nanoseconds is seen (rsync's quick check compares them).
    os.utime(f, ns=(1500000000123456789, 1700000000000000001))
    assert os.stat(f).st_mtime_ns == 1700000000000000001
    # Setting the mtime alone leaves the atime.
    os.utime(f, ns=(1500000000123456789, 1700000001000000000))
    assert os.stat(f).st_atime_ns == 1500000000123456789


def test_times_before_1970_are_kept(server, repo, mount):
    # utime to a time before the epoch changed nothing and answered success (a negative mtime was
    # taken for "unchanged"): tar and rsync of old files kept the extraction time.
    m = branch(mount, repo)
    write_file(m.join("f"), b"x")
    os.mkdir(m.join("d"))
    fd = os.open(m.join("open"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"y")
    os.utime(fd, (-100, -100))  # futimens before close: goes with the upload
    os.close(fd)
    os.utime(m.join("f"), (-315619200, -315619200))
    os.utime(m.join("d"), (-1, -1))
    subprocess.run(["touch", "-d", "1950-06-01 00:00:00 UTC", m.join("touched")], check=True)
    want = {"f": -315619200, "d": -1, "open": -100, "touched": -618105600}
    for mnt in (m, branch(mount, repo)):  # this mount, and one reading lakeFS afresh
        assert {n: int(os.stat(mnt.join(n)).st_mtime) for n in want} == want
    for name, key in (("f", "f"), ("d", "d/"), ("open", "open"), ("touched", "touched")):
        assert api_metadata(server, repo, "main", key)[MTIME_KEY] == str(want[name]), name


def test_attribute_changes_update_ctime(server, repo, mount):
    m = branch(mount, repo)
    f = m.join("f")
    write_file(f, b"x")
    os.utime(f, (1000000000, 1000000000))
    changed = os.stat(f).st_ctime_ns
    assert changed > 1000000000 * 10**9  # now, not the mtime set
    assert os.stat(f).st_mtime == 1000000000
    for change in [lambda: os.chmod(f, 0o600), lambda: os.chown(f, 4321, -1),
                   lambda: os.utime(f, (1000000000, 1000000000))]:
        change()
        now = os.stat(f).st_ctime_ns
        assert now > changed
        changed = now
    # A rename changes the moved name's ctime, not its mtime, as Linux's file systems do (it kept
    # the old ctime), for a file and a directory, within a directory and across directories.
    os.mkdir(m.join("d"))
    os.mkdir(m.join("sub"))
    os.utime(m.join("d"), (1000000000, 1000000000))
    for old, new in (("f", "g"), ("g", "sub/h"), ("d", "d2"), ("d2", "sub/d3")):
        before = os.stat(m.join(old))
        os.rename(m.join(old), m.join(new))
        after = os.stat(m.join(new))
        assert after.st_ctime_ns > before.st_ctime_ns and after.st_mtime == 1000000000, (old, new)


# --- directories ---------------------------------------------------------------------------------------

def test_directories_keep_mode_owner_and_mtime_on_their_marker(server, repo, mount):
    server.upload(repo, "main", "prefix/f", b"f")  # a directory that is only a prefix
    m = branch(mount, repo)
    old = os.umask(0)
    try:
        os.mkdir(m.join("made"), 0o750)
    finally:
        os.umask(old)
    # lakectl's folder format: posix-permissions on "dir/" with Mode = S_IFDIR | bits.
    perms = json.loads(api_metadata(server, repo, "main", "made/")[PERMISSIONS_KEY])
    assert perms["Mode"] == stat.S_IFDIR | 0o750, perms
    assert stat.S_IMODE(os.stat(m.join("made")).st_mode) == 0o750
    # A directory that is only a prefix gets a marker on its first change.
    os.chmod(m.join("prefix"), 0o711)
    os.chown(m.join("prefix"), 1234, 5678)
    os.utime(m.join("prefix"), (1600000000, 1600000000))
    os.chmod(m.join("made"), 0o700)
    meta = api_metadata(server, repo, "main", "prefix/")
    assert json.loads(meta[PERMISSIONS_KEY]) == {"UID": 1234, "GID": 5678, "Mode": stat.S_IFDIR | 0o711}
    assert meta[MTIME_KEY] == "1600000000"
    for mnt in (m, branch(mount, repo)):  # this mount, and a fresh one reading lakeFS
        st = os.stat(mnt.join("prefix"))
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o711, 1234, 5678,
                                                                                      1600000000)
        assert stat.S_IMODE(os.stat(mnt.join("made")).st_mode) == 0o700
        out = subprocess.run(["stat", "-c", "%a %u %g %Y", mnt.join("prefix")], check=True, capture_output=True,
                             text=True).stdout.split()
        assert out == ["711", "1234", "5678", "1600000000"]
    assert sorted(os.listdir(m.join("prefix"))) == ["f"]
    assert api_paths(server, repo, "main") == ["made/", "prefix/", "prefix/f"]


def test_directory_link_count_is_two_plus_subdirectories(server, repo, mount):
    server.upload(repo, "main", "top/c/only-a-prefix", b"y")
    m = branch(mount, repo)
    os.makedirs(m.join("top", "a", "deep"))
    os.mkdir(m.join("top", "b"))
    write_file(m.join("top", "file"), b"x")
    fresh = branch(mount, repo)
    for mnt in (m, fresh):
        assert os.stat(mnt.join("top")).st_nlink == 2 + 3
        assert os.stat(mnt.join("top", "a")).st_nlink == 3
        assert os.stat(mnt.join("top", "b")).st_nlink == 2
    # find's leaf optimisation relies on it: every directory is found.
    out = subprocess.run(["find", fresh.join("top"), "-type", "d"], check=True, capture_output=True,
                         text=True).stdout.split()
    assert sorted(os.path.relpath(p, fresh.path) for p in out) == ["top", "top/a", "top/a/deep", "top/b", "top/c"]


# --- found by pjdfstest (issue 11) -----------------------------------------------------------------------

def test_what_another_user_creates_is_theirs(server, repo, mount):
    # With allow_other, a file or directory belongs to the process that made it, as POSIX says (it
    # belonged to the mount's owner: that user could then not chmod or truncate its own file).
    m = branch(mount, repo, "allow_other")
    os.mkdir(m.join("shared"))
    os.chmod(m.join("shared"), 0o777)
    # the child cannot reach the mount point (under pytest's private tmp): it starts from this one
    shared = os.open(m.join("shared"), os.O_RDONLY | os.O_DIRECTORY)

    def make():
        fd = os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=shared)
        os.write(fd, b"mine")
        os.close(fd)
        os.mkdir("d", 0o700, dir_fd=shared)
        os.chmod("f", 0o640, dir_fd=shared)  # the owner may
        fd = os.open("f", os.O_WRONLY, dir_fd=shared)
        os.ftruncate(fd, 2)
        os.close(fd)
    try:
        assert errno_as_user(65534, make, gid=65533) == 0
    finally:
        os.close(shared)
    for mnt in (m, branch(mount, repo)):  # this mount, and one reading lakeFS afresh
        for name, mode in (("f", 0o640), ("d", 0o700)):
            st = os.stat(mnt.join("shared", name))
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65533, mode), name
    assert read_file(m.join("shared", "f")) == b"mi"
    for key in ("shared/f", "shared/d/"):
        perms = json.loads(api_metadata(server, repo, "main", key)[PERMISSIONS_KEY])
        assert (perms["UID"], perms["GID"]) == (65534, 65533), key
    # The mount's owner (root here) still records itself.
    write_file(m.join("mine"), b"x")
    assert json.loads(api_metadata(server, repo, "main", "mine")[PERMISSIONS_KEY])["UID"] == 0


def test_a_set_group_id_directory_passes_its_group_and_bit_on(server, repo, mount):
    # As Linux does: what is made in a set-group-ID directory gets the directory's group, not the
    # maker's, and a directory made there keeps the bit (new files and directories took the maker's
    # group, the bit lost). A prefix-only directory gets the bit (and a marker) by chmod.
    server.upload(repo, "main", "prefix/f", b"f")
    m = branch(mount, repo, "allow_other")
    for d in ("shared", "prefix"):
        if d == "shared":
            os.mkdir(m.join(d))
        os.chown(m.join(d), 0, 5678)
        os.chmod(m.join(d), 0o2777)
    fds = {d: os.open(m.join(d), os.O_RDONLY | os.O_DIRECTORY) for d in ("shared", "prefix")}

    def make():
        for fd in fds.values():
            f = os.open("f2", os.O_WRONLY | os.O_CREAT, 0o2750, dir_fd=fd)  # not in group 5678
            os.write(f, b"mine")
            os.close(f)
            os.mkdir("sub", 0o750, dir_fd=fd)
            os.mkfifo("fifo", 0o640, dir_fd=fd)
            os.mkdir("sub/deeper", 0o700, dir_fd=fd)
            os.close(os.open("sub/deeper/g", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    try:
        assert errno_as_user(65534, make, gid=65533) == 0
    finally:
        for fd in fds.values():
            os.close(fd)
    want = {"f2": (0o750, stat.S_IFREG),  # the kernel drops the bit the maker may not set
            "sub": (0o2750, stat.S_IFDIR), "fifo": (0o640, stat.S_IFIFO),
            "sub/deeper": (0o2700, stat.S_IFDIR), "sub/deeper/g": (0o600, stat.S_IFREG)}
    for mnt in (m, branch(mount, repo)):  # this mount, and one reading lakeFS afresh
        for d in ("shared", "prefix"):
            for name, (mode, kind) in want.items():
                st = os.lstat(mnt.join(d, name))
                assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode)) == \
                    (65534, 5678, mode, kind), (d, name)
    for d in ("shared", "prefix"):
        for key in ("f2", "sub/", "fifo", "sub/deeper/", "sub/deeper/g"):
            perms = json.loads(api_metadata(server, repo, "main", d + "/" + key)[PERMISSIONS_KEY])
            assert (perms["UID"], perms["GID"]) == (65534, 5678), (d, key)
    # Outside such a directory the maker's group, as before.
    os.mkdir(m.join("plain"), 0o777)
    os.chmod(m.join("plain"), 0o777)
    plain = os.open(m.join("plain"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert errno_as_user(65534, lambda: os.mkdir("d", 0o755, dir_fd=plain), gid=65533) == 0
    finally:
        os.close(plain)
    st = os.stat(m.join("plain", "d"))
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (65533, 0o755)
    # With nothing cached (attr_timeout=0) the directory's marker is read with one statObject, not
    # the directory's listing again.
    uncached = mount("lakefs://%s/main" % repo, options=["attr_timeout=0"])
    server.reset_counts()
    write_file(uncached.join("shared", "late"), b"x")
    assert server.counts().get("statObject") == 1, server.counts()
    assert os.stat(uncached.join("shared", "late")).st_gid == 5678


def test_a_chown_of_a_file_open_for_writing_shows_at_once(server, repo, mount):
    # Its new owner goes with the file's next upload; until then stat, fstat and listings showed the
    # object's old owner (the kernel kept that for attr_timeout, so even after close).
    m = branch(mount, repo)
    os.mkdir(m.join("d"))
    write_file(m.join("d", "f"), b"base\n")
    fd = os.open(m.join("d", "f"), os.O_RDWR | os.O_APPEND)
    try:
        os.write(fd, b"more\n")
        os.fchown(fd, 1234, 4321)
        assert (os.fstat(fd).st_uid, os.fstat(fd).st_gid) == (1234, 4321)
        assert (os.stat(m.join("d", "f")).st_uid, os.stat(m.join("d", "f")).st_gid) == (1234, 4321)
        # a listing fetched while the file is open shows it too (a reset drops the cached ones)
        server.upload(repo, "main", "other", b"another client's")
        write_file(m.join(".lakefs", "reset"), b"other")
        listed = {e.name: (e.stat().st_uid, e.stat().st_gid) for e in os.scandir(m.join("d"))}
        assert listed == {"f": (1234, 4321)}
    finally:
        os.close(fd)
    assert (os.stat(m.join("d", "f")).st_uid, os.stat(m.join("d", "f")).st_gid) == (1234, 4321)
    perms = json.loads(api_metadata(server, repo, "main", "d/f")[PERMISSIONS_KEY])
    assert (perms["UID"], perms["GID"]) == (1234, 4321)
    assert api_get(server, repo, "main", "d/f") == b"base\nmore\n"


def test_owner_may_change_a_files_group_to_one_of_its_own(server, repo, mount):
    m = branch(mount, repo, "allow_other")
    write_file(m.join("f"), b"x")
    os.chown(m.join("f"), 65534, 65534)
    fd = os.open(m.join("f"), os.O_RDONLY)  # the child cannot reach the mount point: it uses this

    def chgrp():
        os.setgroups([65532])  # still root here: the child gives root up after
        os.setgid(65534)
        os.setuid(65534)
        os.fchown(fd, -1, 65532)
    try:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                chgrp()
            except OSError as e:
                code = e.errno or 254
            except BaseException:
                code = 255
            os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        st = os.stat(m.join("f"))
        assert (st.st_uid, st.st_gid) == (65534, 65532)
        # ...but not to a group it is not in, nor give the file away
        assert errno_as_user(65534, os.fchown, fd, -1, 65531) == errno.EPERM
        assert errno_as_user(65534, os.fchown, fd, 65533, -1) == errno.EPERM
    finally:
        os.close(fd)
    assert json.loads(api_metadata(server, repo, "main", "f")[PERMISSIONS_KEY])["GID"] == 65532


def test_a_directory_changes_mtime_and_ctime_when_its_entries_change(server, repo, mount):
    m = branch(mount, repo)
    os.mkdir(m.join("d"))
    os.utime(m.join("d"), (1500000000, 1500000000))
    before = os.stat(m.join("d"))
    assert before.st_mtime == 1500000000
    steps = [lambda: write_file(m.join("d", "f"), b"x"),
             lambda: os.mkdir(m.join("d", "sub")),
             lambda: os.symlink("f", m.join("d", "l")),
             lambda: os.rename(m.join("d", "f"), m.join("d", "g")),
             lambda: os.unlink(m.join("d", "l")),
             lambda: os.rmdir(m.join("d", "sub"))]
    last = before
    for step in steps:
        os.utime(m.join("d"), (1500000000, 1500000000))
        step()
        st = os.stat(m.join("d"))
        assert st.st_mtime > 1600000000 and st.st_ctime >= st.st_mtime, step
        last = st
    assert last.st_mtime_ns >= before.st_ctime_ns


def test_an_mtime_set_on_a_directory_after_filling_it_is_the_one_shown(server, repo, mount):
    """`touch -d` (or tar, cp -a, lakectl local) setting a directory's time after creating what is in
    it: that time is shown, not the time of the last entry change."""
    m = branch(mount, repo)
    os.makedirs(m.join("p", "sub"))
    write_file(m.join("p", "sub", "x"), b"x")
    os.symlink("sub/x", m.join("p", "lnk"))
    os.utime(m.join("p", "sub"), (1600000800, 1600000800))
    os.utime(m.join("p"), (1600000900, 1600000900))
    assert os.stat(m.join("p", "sub")).st_mtime == 1600000800
    assert os.stat(m.join("p")).st_mtime == 1600000900
    write_file(m.join("p", "y"), b"y")  # a later change moves it on again
    assert os.stat(m.join("p")).st_mtime > 1700000000


def test_a_failed_directory_rename_keeps_the_replaced_directorys_mode_owner_and_mtime(server, repo, mount):
    # Found by the differential test under faults: the undo put back a bare marker (0755, no owner).
    m = branch(mount, repo)
    os.mkdir(m.join("d"))
    for name in ("one", "two", "three"):
        write_file(m.join("d", name), name.encode())
    os.mkdir(m.join("target"), 0o700)
    os.chown(m.join("target"), 1234, 5678)
    os.utime(m.join("target"), (1600000000, 1600000000))
    recorded = api_metadata(server, repo, "main", "target/")
    server.add_fault(operation="copyObject", latency_ms=1, count=1)
    server.add_fault(operation="copyObject", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("d"), m.join("target"))
    assert api_metadata(server, repo, "main", "target/") == recorded
    for mnt in (m, branch(mount, repo)):
        st = os.stat(mnt.join("target"))
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o700, 1234, 5678,
                                                                                      1600000000)
        assert sorted(os.listdir(mnt.join("d"))) == ["one", "three", "two"]


def test_a_file_made_where_a_directory_was_shows_the_mtime_set_on_it(server, repo, mount):
    # A directory's in-memory mtime (names changed in it) is its own: a file later made at its path
    # showed it instead of the mtime utimens set (found by the differential test).
    m = branch(mount, repo)
    os.mkdir(m.join("x"))
    write_file(m.join("x", "f"), b"f")
    os.unlink(m.join("x", "f"))
    os.rmdir(m.join("x"))
    write_file(m.join("x"), b"now a file")
    os.utime(m.join("x"), (1500000000, 1500000000))
    assert os.stat(m.join("x")).st_mtime == 1500000000
    # and one renamed away takes its times along
    os.mkdir(m.join("d"))
    write_file(m.join("d", "g"), b"g")
    os.rename(m.join("d"), m.join("e"))
    write_file(m.join("d"), b"a file")
    os.utime(m.join("d"), (1500000000, 1500000000))
    assert os.stat(m.join("d")).st_mtime == 1500000000
    assert os.stat(m.join("e")).st_mtime > 1600000000
