"""Render a clickhouse-server config that runs as a plain process under a local folder.

The Debian package's ``/etc/clickhouse-server/config.xml`` is the template: paths move under the
folder, ports are chosen, the server listens on 127.0.0.1 only, and every section that needs root
services or files we do not have (TLS, graphite, clusters, ZooKeeper, macros, includes) is removed.
A secure native port can be added back with the caller's own certificate (``TlsListener``).
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from kcollect.localstack.ports import LOOPBACK

SYSTEM_CONFIG_DIR = Path("/etc/clickhouse-server")

# Sections that need TLS files, other servers, ZooKeeper or /etc/metrika.xml includes.
_REMOVED = (
    "https_port",
    "tcp_port_secure",
    "tcp_ssl_port",
    "interserver_https_port",
    "openSSL",
    "graphite",
    "graphite_rollup_example",
    "remote_servers",
    "zookeeper",
    "macros",
    "compression",
    "distributed_ddl",
    "include_from",
    "listen_host",
    "interserver_http_host",
    "prometheus",
)


@dataclass(frozen=True)
class ClickHouseLayout:
    """Where one local clickhouse-server keeps its config, data and logs."""

    config_dir: Path
    data_dir: Path
    log_dir: Path

    @classmethod
    def under(cls, folder: Path) -> ClickHouseLayout:
        """The layout inside a stack state folder (data under ``clickhouse/``, logs under ``logs/``)."""
        return cls(
            config_dir=folder / "clickhouse", data_dir=folder / "clickhouse" / "data", log_dir=folder / "logs"
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.xml"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "clickhouse-server.log"

    @property
    def error_log(self) -> Path:
        return self.log_dir / "clickhouse-server.err.log"


@dataclass(frozen=True)
class ClickHousePorts:
    """The three ports one server listens on."""

    tcp: int
    http: int
    interserver: int


@dataclass(frozen=True)
class TlsListener:
    """A secure native port (``tcp_port_secure``) with the server's certificate and key (PEM files)."""

    port: int
    certificate: Path
    private_key: Path


def _set_tls(root: ET.Element, tls: TlsListener) -> None:
    _set(root, "tcp_port_secure", str(tls.port))
    server = ET.SubElement(ET.SubElement(root, "openSSL"), "server")
    for tag, value in (
        ("certificateFile", str(tls.certificate)),
        ("privateKeyFile", str(tls.private_key)),
        ("verificationMode", "none"),  # clients are not asked for certificates
        ("loadDefaultCAFile", "false"),
        ("cacheSessions", "true"),
        ("disableProtocols", "sslv2,sslv3"),
        ("preferServerCiphers", "true"),
    ):
        _set(server, tag, value)


def _set(root: ET.Element, tag: str, value: str) -> None:
    node = root.find(tag)
    if node is None:
        node = ET.SubElement(root, tag)
    node.text = value


def _remove_all(root: ET.Element, tags: tuple[str, ...]) -> None:
    for tag in tags:
        for node in root.findall(tag):
            root.remove(node)


def _drop_includes(root: ET.Element) -> None:
    for node in root.iter():
        node.attrib.pop("incl", None)


def _set_paths(root: ET.Element, layout: ClickHouseLayout) -> None:
    data = layout.data_dir
    _set(root, "path", f"{data}/")
    _set(root, "tmp_path", f"{data}/tmp/")
    _set(root, "user_files_path", f"{data}/user_files/")
    _set(root, "format_schema_path", f"{data}/format_schemas/")
    _set(root, "users_config", str(layout.config_dir / "users.xml"))
    logger = root.find("logger")
    if logger is None:
        logger = ET.SubElement(root, "logger")
    _set(logger, "log", str(layout.server_log))
    _set(logger, "errorlog", str(layout.error_log))
    _set(logger, "size", "100M")
    _set(logger, "count", "3")


def _set_ports(root: ET.Element, ports: ClickHousePorts) -> None:
    _set(root, "tcp_port", str(ports.tcp))
    _set(root, "http_port", str(ports.http))
    _set(root, "interserver_http_port", str(ports.interserver))
    _set(root, "listen_host", LOOPBACK)
    _set(root, "interserver_http_host", LOOPBACK)


def render_config(
    template: ET.Element, layout: ClickHouseLayout, ports: ClickHousePorts, tls: TlsListener | None = None
) -> ET.Element:
    """A copy of the template's root element, edited to run under ``layout`` on ``ports`` (and, with
    ``tls``, a secure native port with its own openSSL server section)."""
    root = ET.fromstring(ET.tostring(template))
    _remove_all(root, _REMOVED)
    _drop_includes(root)
    _set_paths(root, layout)
    _set_ports(root, ports)
    if tls is not None:
        _set_tls(root, tls)
    return root


def write_config(
    layout: ClickHouseLayout,
    ports: ClickHousePorts,
    system_dir: Path = SYSTEM_CONFIG_DIR,
    tls: TlsListener | None = None,
) -> Path:
    """Write ``config.xml`` (rendered) and ``users.xml`` (copied) into the layout; return config.xml."""
    for folder in (layout.config_dir, layout.data_dir, layout.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    template = ET.parse(system_dir / "config.xml").getroot()
    if template is None:
        raise ValueError(f"{system_dir / 'config.xml'} has no root element")
    rendered = ET.ElementTree(render_config(template, layout, ports, tls))
    ET.indent(rendered)
    rendered.write(layout.config_file, encoding="utf-8", xml_declaration=True)
    shutil.copyfile(system_dir / "users.xml", layout.config_dir / "users.xml")
    return layout.config_file
