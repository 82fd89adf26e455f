"""Fixtures for the SDK tests: the virtualenv python that has the official lakeFS Python SDKs
(`scripts/third-party.sh sdk` installs it), `sdk` (an sdklib.SdkAgent on the session's server), and
the mount fixtures of tests/mount, loaded from there rather than copied.
"""
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MOUNT_TESTS = os.path.join(os.path.dirname(HERE), "mount")
sys.path.insert(0, MOUNT_TESTS)  # mountlib

import sdklib  # noqa: E402


def _load_mount_fixtures():
    spec = importlib.util.spec_from_file_location("lakefuse_mount_fixtures", os.path.join(MOUNT_TESTS, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_mount_fixtures = _load_mount_fixtures()
mount = _mount_fixtures.mount
lakefuse_env = _mount_fixtures.lakefuse_env
lakefuse_home = _mount_fixtures.lakefuse_home


@pytest.fixture(scope="session")
def sdk_python():
    path = sdklib.sdk_python_path()
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: run scripts/third-party.sh sdk (installs lakefs-sdk and lakefs from PyPI)"
                    % path, pytrace=False)
    return path


@pytest.fixture
def sdk(sdk_python, server, tmp_path):
    """An sdklib.SdkAgent on the session's server; it must exit 0 after the test."""
    home = tmp_path / "sdk-home"
    home.mkdir()
    agent = sdklib.SdkAgent(sdk_python, sdklib.sdk_env(server, home), str(tmp_path / "sdk.stderr"))
    yield agent
    status = agent.stop()
    assert status == 0, "sdk_client.py serve exited %r: %s" % (status, agent.stderr()[-3000:])
