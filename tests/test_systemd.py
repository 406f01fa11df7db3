"""The systemd units in systemd/: systemd accepts them, and they keep their security settings.

Each unit pair is copied to a temporary directory with ExecStart pointed at the installed
``psp`` (this venv's, by absolute path, since ``systemd-analyze verify`` checks that the
command exists), then checked with ``systemd-analyze verify`` (``--user`` for the user
variant): exit 0 and no warning that names these units. The settings that make the
service safe are asserted on the parsed files, so a later edit cannot drop them quietly.
The sysusers.d and tmpfiles.d snippets are applied to a scratch root.

``systemd-analyze`` comes from Debian's ``systemd`` package; ``./quickstart test`` installs
it where it is missing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
PSP = os.path.abspath(os.path.join(os.path.dirname(sys.executable), "psp"))
#: The command the shipped units name; the README tells to rewrite it to the installed psp.
EXEC = "/usr/local/bin/psp"

SYSTEM = (UNITS / "psp-cdp.socket", UNITS / "psp-cdp.service")
USER = (UNITS / "user" / "psp-cdp.socket", UNITS / "user" / "psp-cdp.service")

#: A unit file name as systemd prints it in messages.
_UNIT_NAME = re.compile(r"[\w@:.\\-]+\.(?:service|socket|target|mount|automount|swap|path|timer|slice|scope|device)\b")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run ./quickstart test, which installs Debian's systemd package where it is missing")
    return path


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value) in order (systemd keys repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a key=value line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    """The effective value of a single-valued key: the last assignment."""
    found = values(unit, section, key)
    assert found, f"[{section}] {key}= is missing"
    return found[-1]


def words(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> set[str]:
    """A list-valued key (Requires=, After=, ...) as the set of its words over all assignments."""
    return {word for v in values(unit, section, key) for word in v.split()}


def exec_start(unit: dict[str, list[tuple[str, str]]]) -> list[str]:
    return shlex.split(value(unit, "Service", "ExecStart"))


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"ExecStart lacks {name}: {argv}"
    return argv[argv.index(name) + 1]


def install_copy(units: tuple[Path, Path], dest: Path) -> list[Path]:
    """Copy a socket/service pair into dest, ExecStart pointed at this venv's psp."""
    assert os.access(PSP, os.X_OK), f"{PSP} is not installed: run ./quickstart test"
    dest.mkdir()
    copies = []
    for path in units:
        text = path.read_text()
        if path.suffix == ".service":
            assert text.count(f"ExecStart={EXEC} ") == 1, f"{path}: ExecStart should name {EXEC}"
            text = text.replace(f"ExecStart={EXEC} ", f"ExecStart={PSP} ")
        copy = dest / path.name
        copy.write_text(text)
        copies.append(copy)
    return copies


def verify(copies: list[Path], *, user: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="cat", SYSTEMD_LOG_COLOR="0")
    args = [_tool("systemd-analyze")]
    if user:
        # A user manager is set up from $XDG_RUNTIME_DIR (it fails without one, as in CI
        # containers); a private one, so no running user manager is needed or touched.
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        args.append("--user")
    args += ["verify", "--man=no", *map(str, copies)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def complaints(stderr: str, copies: list[Path]) -> list[str]:
    """Lines of verify's stderr about these units: those that name them or their
    directory, and those that name no unit at all. Lines about other units of this
    machine (which verify loads as dependencies) are not ours to fix."""
    ours = {c.name for c in copies}
    where = str(copies[0].parent)
    found = []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        named = set(_UNIT_NAME.findall(line))
        if where in line or named & ours or not named:
            found.append(line)
    return found


@pytest.mark.parametrize("variant", ["system", "user"])
def test_systemd_analyze_verify(variant: str, tmp_path: Path) -> None:
    copies = install_copy(SYSTEM if variant == "system" else USER, tmp_path / "units")
    result = verify(copies, user=variant == "user", tmp_path=tmp_path)
    assert result.returncode == 0, f"systemd-analyze verify failed ({result.returncode}):\n{result.stderr}"
    assert complaints(result.stderr, copies) == [], result.stderr


def test_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    """The check above would catch a mistake: a bad key and a missing command are reported."""
    copies = install_copy(SYSTEM, tmp_path / "units")
    service = copies[1]
    text = service.read_text().replace(f"ExecStart={PSP} ", "ExecStart=/nonexistent/psp ")
    service.write_text(text.replace("[Service]\n", "[Service]\nProtectSistem=strict\n"))
    result = verify(copies, user=False, tmp_path=tmp_path)
    assert result.returncode != 0
    found = "\n".join(complaints(result.stderr, copies))
    assert "ProtectSistem" in found and "/nonexistent/psp" in found, result.stderr


def test_system_units_security_settings() -> None:
    socket, service = map(parse_unit, SYSTEM)

    assert value(socket, "Socket", "ListenStream") == "/run/psp/psp.sock"
    assert value(socket, "Socket", "SocketMode") == "0660"
    assert value(socket, "Socket", "SocketUser") == "psp"
    assert value(socket, "Socket", "SocketGroup") == "psp"
    assert value(socket, "Socket", "DirectoryMode") == "0750"
    assert value(socket, "Socket", "Accept") == "no"
    assert "sockets.target" in words(socket, "Install", "WantedBy")

    assert "psp-cdp.socket" in words(service, "Unit", "Requires")
    assert "psp-cdp.socket" in words(service, "Unit", "After")
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "User": "psp",
        "Group": "psp",
        "UMask": "0077",
        "StateDirectory": "psp",
        "StateDirectoryMode": "0700",
        "RuntimeDirectory": "psp",
        "RuntimeDirectoryMode": "0750",
        # Without it, stopping the service would delete the socket psp-cdp.socket listens on.
        "RuntimeDirectoryPreserve": "yes",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "15",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }
    assert {key: value(service, "Service", key) for key in expected} == expected
    assert values(service, "Service", "DynamicUser") in ([], ["no"])
    assert words(service, "Service", "RestrictAddressFamilies") == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert values(service, "Service", "SystemCallFilter")[0] == "@system-service"

    argv = exec_start(service)
    assert argv[:2] == [EXEC, "daemon"]
    # The daemon serves the socket the socket unit listens on, so an inherited socket and
    # a fresh bind (the service started on its own) are the same path.
    assert option(argv, "--socket") == value(socket, "Socket", "ListenStream")
    assert option(argv, "--store") == "/var/lib/psp/store"
    # The keyring is inside the state directory: writable by psp, 0700, kept across restarts.
    assert "PSP_KEYRING=/var/lib/psp/keys" in words(service, "Service", "Environment")


def test_user_units_settings() -> None:
    socket, service = map(parse_unit, USER)

    assert value(socket, "Socket", "ListenStream") == "%t/psp/psp.sock"
    assert value(socket, "Socket", "SocketMode") == "0600"
    assert value(socket, "Socket", "Accept") == "no"
    assert "sockets.target" in words(socket, "Install", "WantedBy")

    assert "psp-cdp.socket" in words(service, "Unit", "Requires")
    assert value(service, "Service", "Type") == "notify"
    assert value(service, "Service", "NotifyAccess") == "main"
    assert values(service, "Service", "User") == [] and values(service, "Service", "Group") == []
    for key in ("NoNewPrivileges", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute", "RestrictNamespaces"):
        assert value(service, "Service", key) == "yes", key
    assert value(service, "Service", "UMask") == "0077"
    assert words(service, "Service", "RestrictAddressFamilies") == {"AF_UNIX", "AF_INET", "AF_INET6"}

    argv = exec_start(service)
    assert argv[:2] == [EXEC, "daemon"]
    assert option(argv, "--socket") == "%t/psp/psp.sock"
    # The store the CLI uses by default, so `psp` from a shell hands its work to this daemon.
    assert option(argv, "--store") == "%h/.local/share/psp"


def test_sysusers_and_tmpfiles(tmp_path: Path) -> None:
    """sysusers.d creates the psp user and group; tmpfiles.d makes /run/psp psp:psp 0750,
    so the psp group can reach the socket before the service has first run."""
    root = tmp_path / "root"
    for kind in ("sysusers.d", "tmpfiles.d"):
        (root / "etc" / kind).mkdir(parents=True)
        shutil.copy(UNITS / kind / "psp-cdp.conf", root / "etc" / kind / "psp-cdp.conf")

    result = subprocess.run([_tool("systemd-sysusers"), f"--root={root}", "psp-cdp.conf"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    users = {line.split(":")[0]: line.split(":") for line in (root / "etc" / "passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":") for line in (root / "etc" / "group").read_text().splitlines()}
    assert "psp" in users and "psp" in groups
    _, _, uid, gid, _, home, shell = users["psp"]
    assert gid == groups["psp"][2] and int(uid) < 1000  # a system user with its own group
    assert home == "/var/lib/psp" and shell.endswith("nologin")

    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles --create must chown /run/psp to psp, which needs root")
    result = subprocess.run([_tool("systemd-tmpfiles"), f"--root={root}", "--create", "psp-cdp.conf"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    made = (root / "run" / "psp").stat()
    assert stat.S_ISDIR(made.st_mode) and stat.S_IMODE(made.st_mode) == 0o750
    assert (made.st_uid, made.st_gid) == (int(uid), int(gid))
