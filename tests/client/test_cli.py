"""`lakefuse doctor`, `--help`, `--version`: the command line finds the
endpoint and credentials the way lakectl does (flags, LAKECTL_* variables,
~/.lakectl.yaml) and says in one line what is wrong, never the secret."""
import pytest
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAKEFUSE = ROOT / "build" / "lakefuse"


def run(args, env_extra=None, home=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKECTL_")}
    env["HOME"] = str(home) if home else "/nonexistent"
    env.update(env_extra or {})
    return subprocess.run([str(LAKEFUSE), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def lakectl_env(server, secret=None):
    return {
        "LAKECTL_SERVER_ENDPOINT_URL": server.url,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": server.access_key_id,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": secret or server.secret_access_key,
    }


def test_version_and_help():
    v = run(["--version"])
    assert v.returncode == 0 and v.stdout.startswith("lakefuse ")
    h = run(["--help"])
    assert h.returncode == 0 and "doctor" in h.stdout


@pytest.mark.presign
def test_doctor_with_environment(server):
    p = run(["doctor"], lakectl_env(server))
    assert p.returncode == 0, p.stderr
    assert f"endpoint:  {server.url}/api/v1" in p.stdout
    assert "presign yes" in p.stdout


def test_doctor_with_lakectl_yaml(server, tmp_path):
    (tmp_path / ".lakectl.yaml").write_text(
        "credentials:\n"
        f"  access_key_id: {server.access_key_id}\n"
        f"  secret_access_key: {server.secret_access_key}\n"
        "server:\n"
        f"  endpoint_url: {server.url}/api/v1\n"
        "metastore:\n  glue: {}\n"
    )
    p = run(["doctor"], home=tmp_path)
    assert p.returncode == 0, p.stderr
    # A flag beats the file.
    bad = run(["doctor", "--secret-access-key", "wrong-secret"], home=tmp_path)
    assert bad.returncode == 1
    assert "credentials refused" in bad.stderr
    assert "wrong-secret" not in bad.stderr + bad.stdout


def test_doctor_reports_bad_secret_without_printing_it(server):
    p = run(["doctor"], lakectl_env(server, secret="not-the-secret-123"))
    assert p.returncode == 1
    assert "credentials refused" in p.stderr
    assert "not-the-secret-123" not in p.stderr + p.stdout


def test_doctor_reports_unreachable_server():
    p = run(["doctor", "--endpoint", "http://127.0.0.1:1",
             "--access-key-id", "a", "--secret-access-key", "b"])
    assert p.returncode == 1
    assert "does not answer" in p.stderr
    # One line for the failure, after the warning that a key on the command line is visible.
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("lakefuse: warning: --secret-access-key"), lines


def test_doctor_reports_missing_configuration(tmp_path):
    p = run(["doctor"], home=tmp_path)
    assert p.returncode == 1 and "no lakeFS endpoint" in p.stderr
    p = run(["doctor", "--config", str(tmp_path / "missing.yaml")])
    assert p.returncode == 1 and "missing.yaml" in p.stderr


def test_doctor_resolves_mount_uris(server, repo):
    """Every ref form a mount accepts resolves to the commit the API names;
    only a plain branch name is a moving, writable target."""
    env = lakectl_env(server)
    http = server.http
    base = f"{server.api_url}/repositories/{repo}"
    up = http.post(f"{base}/branches/main/objects", params={"path": "a.txt"},
                   data=b"a", headers={"Content-Type": "application/octet-stream"})
    assert up.status_code == 201
    head = http.post(f"{base}/branches/main/commits",
                     json={"message": "one"}).json()["id"]
    parent = http.get(f"{base}/commits/{head}").json()["parents"][0]
    assert http.post(f"{base}/tags", json={"id": "v1", "ref": head}).status_code == 201

    cases = {
        "main": (head, "branch"),
        "main~1": (parent, "fixed"),
        "main@": (head, "fixed"),
        "v1": (head, "fixed"),
        head: (head, "fixed"),
        head[:12]: (head, "fixed"),
    }
    for ref, (commit, kind) in cases.items():
        p = run(["doctor", f"lakefs://{repo}/{ref}/some/prefix"], env)
        assert p.returncode == 0, (ref, p.stderr)
        assert f"ref:        {ref} -> commit {commit} ({kind}" in p.stdout, p.stdout

    p = run(["doctor", f"lakefs://{repo}"], env)
    assert p.returncode == 0 and "default branch main" in p.stdout


def test_doctor_names_what_is_missing(server, repo):
    env = lakectl_env(server)
    p = run(["doctor", f"lakefs://{repo}/no-such-branch"], env)
    assert p.returncode == 1
    assert p.stderr.strip() == (
        f"lakefuse: ref 'no-such-branch' in repository '{repo}' not found")
    p = run(["doctor", "lakefs://no-such-repo/main"], env)
    assert p.returncode == 1
    assert p.stderr.strip() == "lakefuse: repository 'no-such-repo' not found"
    p = run(["doctor", "lakefs://Bad_Name"], env)
    assert p.returncode == 1 and "repository names" in p.stderr
