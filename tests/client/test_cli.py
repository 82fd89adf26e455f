"""`lakefuse doctor`, `--help`, `--version`: the command line finds the
endpoint and credentials the way lakectl does (flags, LAKECTL_* variables,
~/.lakectl.yaml) and says in one line what is wrong, never the secret."""
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
    assert len(p.stderr.strip().splitlines()) == 1


def test_doctor_reports_missing_configuration(tmp_path):
    p = run(["doctor"], home=tmp_path)
    assert p.returncode == 1 and "no lakeFS endpoint" in p.stderr
    p = run(["doctor", "--config", str(tmp_path / "missing.yaml")])
    assert p.returncode == 1 and "missing.yaml" in p.stderr
