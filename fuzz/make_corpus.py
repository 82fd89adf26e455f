#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/NAME): small hand-written inputs,
one per shape the parser meets (valid answers, odd but legal ones, and a few broken ones). Seeds that
reproduced a bug are named regress-* and are kept by hand, not written here. Run from anywhere:
  /usr/bin/python3 fuzz/make_corpus.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PAGINATION = {"has_more": False, "next_offset": "", "results": 1, "max_per_page": 1000}
STATS = {"path": "data/a.csv", "path_type": "object", "physical_address": "s3://bucket/x/abc",
         "physical_address_expiry": 1700000000, "checksum": "d41d8cd98f00b204e9800998ecf8427e",
         "size_bytes": 42, "mtime": 1600000000, "content_type": "text/csv",
         "metadata": {"::lakefs::client-mtime": "1600000001",
                      "::lakefs::posix-permissions": '{"UID":0,"GID":0,"Mode":33188}'}}
COMMIT = {"id": "a" * 64, "parents": ["b" * 64], "committer": "admin", "message": "m",
          "creation_date": 1600000000, "meta_range_id": "c" * 64, "metadata": {"k": "v"}}


def j(obj):
    return json.dumps(obj).encode()


def json_models():
    return {
        "repository": j({"id": "repo", "creation_date": 1, "default_branch": "main",
                         "storage_namespace": "s3://b/repo", "storage_id": "", "read_only": False}),
        "repository_list": j({"pagination": PAGINATION, "results": [{"id": "r1", "creation_date": 1,
                                                                     "default_branch": "main",
                                                                     "storage_namespace": "local://r1"}]}),
        "ref": j({"id": "main", "commit_id": "a" * 64}),
        "ref_list": j({"pagination": dict(PAGINATION, has_more=True, next_offset="main"),
                       "results": [{"id": "main", "commit_id": "a" * 64}]}),
        "commit": j(COMMIT),
        "commit_list": j({"pagination": PAGINATION, "results": [COMMIT, dict(COMMIT, parents=[])]}),
        "object_stats": j(STATS),
        "object_list": j({"pagination": PAGINATION, "results": [
            STATS, {"path": "data/sub/", "path_type": "common_prefix", "checksum": "", "mtime": 0},
            dict(STATS, path="a\u00e9b\t\n", metadata={})]}),
        "diff_list": j({"pagination": PAGINATION, "results": [
            {"type": t, "path": "p", "path_type": "object", "size_bytes": 1}
            for t in ("added", "removed", "changed", "conflict", "prefix_changed")]}),
        "staging_location": j({"physical_address": "s3://b/x", "presigned_url": "https://h/x?sig=1",
                               "presigned_url_expiry": 1700000000}),
        "config": j({"version_config": {"version": "1.84.0"},
                     "storage_config": {"blockstore_type": "s3", "blockstore_namespace_example": "s3://b/",
                                        "blockstore_namespace_ValidityRegex": "^s3://",
                                        "pre_sign_support": True, "pre_sign_support_ui": False,
                                        "import_support": True, "import_validity_regex": "^s3://",
                                        "pre_sign_multipart_upload": True,
                                        "default_namespace_prefix": "s3://b/"}}),
        "user": j({"user": {"id": "admin", "creation_date": 1, "friendly_name": "A", "email": "a@b"}}),
        "object_errors": j({"errors": [{"status_code": 404, "message": "not found", "path": "x"}]}),
        "multipart": j({"upload_id": "u1", "physical_address": "s3://b/x",
                        "presigned_urls": ["https://h/1", "https://h/2"], "presigned_url_expiry": 1}),
        "merge_result": j({"reference": "a" * 64}),
        "upload_to": j({"presigned_url": "https://h/part?x=1"}),
        "unicode_escapes": b'{"id":"\\u00e9\\ud83d\\ude00\\u0000x","commit_id":"c"}',
        "nested": b'{"pagination":' + b'[' * 200 + b']' * 200 + b'}',
        "truncated": j({"pagination": PAGINATION, "results": [STATS]})[:150],
        "numbers": b'{"path":"p","path_type":"object","checksum":"c","size_bytes":1e300,"mtime":-0.5}',
    }


def error_body():
    return {
        "plain": b"\x01\x20" + j({"message": "branch not found"}),
        "long": b"\x93\x3f" + j({"message": "x" * 2000}),
        "not_json": b"\xc8\x10<html>502 Bad Gateway</html>",
        "number": b"\x00\x05" + j({"message": 42}),
        "locked": b"\xc8\x20" + j({"message": "branch is currently locked, try again later"}),
    }


def uri():
    return {n: v.encode() for n, v in {
        "all": "lakefs://", "repo": "lakefs://demo-repo", "ref": "lakefs://demo-repo/main",
        "prefix": "lakefs://demo-repo/main/data/sub/", "expr": "lakefs://demo-repo/main~2/x",
        "dotdot": "lakefs://demo-repo/main/a/../b", "empty_seg": "lakefs://demo-repo/main/a//b",
        "bad_repo": "lakefs://Demo_Repo/main", "no_scheme": "s3://bucket/key",
        "long_seg": "lakefs://demo-repo/main/" + "x" * 300,
    }.items()}


def config_yaml():
    return {
        "lakectl": (b"credentials:\n  access_key_id: AKIAIOSFODNN7EXAMPLE\n"
                    b"  secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
                    b"server:\n  endpoint_url: http://127.0.0.1:8000\n"),
        "flow": b"{server: {endpoint_url: 'https://x'}, credentials: {access_key_id: [1, 2]}}\n",
        "anchors": b"a: &x {endpoint_url: h}\nserver: *x\ncredentials: {secret_access_key: !!binary aGk=}\n",
        "bad_indent": b"server:\n endpoint_url: a\n  b: c\n",
        "list_root": b"- server\n- credentials\n",
        "multi_doc": b"---\nserver: {endpoint_url: a}\n---\nother: 1\n",
        "empty": b"",
    }


def listing():
    def rec(flags, *fields):
        return bytes([flags]) + b"\x01".join(f.encode("utf-8", "surrogateescape") for f in fields)
    records = [
        rec(0, "d/a.txt"), rec(1, "d/sub/"), rec(0, "d/sub/"), rec(0, "d/"),
        rec(2, "d/perm", '{"UID":1000,"GID":1000,"Mode":33261}'),
        rec(4 | 2, "d/lakectl", '{"Mode":"0755"}', "1600000000"),
        rec(8, "d/link", "", "", "../target"), rec(1, "d//"), rec(1, "d/../"), rec(0, "d/."),
        rec(0, "d/" + "n" * 256), rec(0, "d/a"), rec(1, "d/a/"), rec(0, "other/x"),
        rec(0, "d/.lakefs"), rec(0, "d/tab\there"), rec(0, "d/nl\nhere"),
        rec(0, "d/caf\u00e9"), rec(0, "d/cafe\u0301"), rec(0, "d/bad\udcff"),
        rec(16, "d/pending"), rec(16 | 32, "d/a.txt"),
    ]
    return {
        "mixed": b"d/\0" + b"\0".join(records),
        "root": b"\0" + rec(1, "a/") + b"\0" + rec(0, "a") + b"\0" + rec(0, ".lakefs"),
        "long_key": b"\0" + rec(0, ("k" * 200 + "/") * 20 + "f"),
        # A directory 1004 bytes deep: a 20-byte name fits lakeFS's 1024-byte keys, 21 bytes do not.
        "deep": (("d" * 250 + "/") * 4).encode() + b"\0" + b"\0".join(
            [rec(0, ("d" * 250 + "/") * 4 + "a" * 20), rec(0, ("d" * 250 + "/") * 4 + "b" * 21),
             rec(1, ("d" * 250 + "/") * 4 + "c" * 19 + "/"), rec(1, ("d" * 250 + "/") * 4 + "e" * 20 + "/")]),
    }


def staging_journal():
    base = {"version": 2, "repo": "repo", "branch": "main", "path": "dir/file.txt", "state": "pending",
            "error": None, "mode": 33188, "base_absent": False, "base": "etag1", "generation": "3",
            "sealed": True, "sealed_size": "12", "digest": "ab" * 32, "boot_id": "boot",
            "client_mtime": 1600000000, "has_owner": True, "uid": 1000, "gid": 1000,
            "metadata": {"k": "v"}, "content_type": "text/plain", "attempts": ["try 1"]}
    return {
        "pending": j(base),
        "failed": j(dict(base, state="failed", error="HTTP 500")),
        "conflict": j(dict(base, state="conflict", error=None)),
        "version1": j({"version": 1, "repo": "r", "branch": "b", "path": "p", "state": "clean"}),
        "hostile": j(dict(base, path="../../etc/passwd", generation="18446744073709551616",
                          uid=4294967296, attempts=["x"] * 9)),
        "bad_numbers": j(dict(base, mode=-1, client_mtime=1e16, sealed_size="-1")),
    }


def main():
    for target, seeds in [("json_models", json_models()), ("error_body", error_body()), ("uri", uri()),
                          ("config_yaml", config_yaml()), ("listing", listing()),
                          ("staging_journal", staging_journal())]:
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
