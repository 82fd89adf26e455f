import os
from mountlib import api_paths, write_file, read_file
NAMES = ["a+b", "a&b=c", "p%20q", "p%2Fq", "x;y", "t~1", "u'v\"w", "[br]", "{c}", "a b", "sp ", " lead", "tab\tx", "star*", "bang!", "at@", "dollar$", "comma,", "colon:x", "pipe|x", "lt<gt>", "caret^", "back`tick"]
def test_p(server, repo, mount, tmp_path):
    m = mount("lakefs://%s/main" % repo)
    os.mkdir(m.join("d+d"))
    for n in NAMES:
        write_file(m.join("d+d", n), n.encode())
    os.symlink("a+b", m.join("d+d", "l+1"))
    os.rename(m.join("d+d", "a+b"), m.join("d+d", "a+b2"))
    m.unmount()
    print("SERVER", sorted(api_paths(server, repo, "main")))
    m2 = mount("lakefs://%s/main" % repo, cache_dir=str(tmp_path / "c2"))
    got = sorted(os.listdir(m2.join("d+d")))
    exp = sorted([n for n in NAMES if n != "a+b"] + ["a+b2", "l+1"])
    bad = [n for n in exp if n not in got] + [n for n in got if n not in exp]
    print("BAD", bad)
    for n in NAMES:
        if n == "a+b": n2 = "a+b2"
        else: n2 = n
        assert read_file(m2.join("d+d", n2)) == n.encode(), n
    assert not bad
