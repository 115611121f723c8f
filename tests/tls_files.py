"""Certificates for TLS tests, made with the machine's ``openssl``: a CA the test owns and a server
certificate it signs for 127.0.0.1 / localhost."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str = "ca") -> Path:
    """A self-signed CA certificate ``<name>.pem`` (key ``<name>.key``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN=kcollect test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             cwd=folder)  # fmt: skip
    return folder / f"{name}.pem"


def make_server_files(folder: Path) -> TlsFiles:
    """A CA and a server certificate it signed for IP 127.0.0.1 and DNS localhost."""
    ca = make_ca(folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=folder)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", ca.name, "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=folder)  # fmt: skip
    return TlsFiles(ca, folder / "server.pem", folder / "server.key")
