"""Debian's real nginx with ``deploy/nginx/cloudbranch.conf`` in front of a real
``cloudbranch serve``: a call's HTTP and WebSocket traffic goes through TLS, the
security headers are on every answer, ``/metrics`` stays internal.

The site file is used as it is, except for the lines it marks ``# test:``
(listen addresses, the upstream, the certificate paths). A private nginx master
runs in the foreground under a temporary prefix with its own pid, logs and temp
folders, on free loopback ports. The certificate is made here with ``cryptography``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.settings import Settings
from tests.api.harness import Api, prepare_template
from tests.api.nodes import Node, nodes
from tests.deploy.processes import daemon, free_tcp_port, require_binary, tcp_listening

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "cloudbranch.conf"

# One server and one nginx for the module: each test uses its own customer.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Proxy:
    https_url: str
    http_url: str
    node: Node
    ssl_context: ssl.SSLContext


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _replace_marked(site: str, marker: str, replacement: str) -> str:
    """Swap every line marked ``# test: <marker>``; the site must have at least one."""
    pattern = re.compile(rf"^(\s*).*# test: {re.escape(marker)}$", re.MULTILINE)
    assert pattern.search(site), f"{SITE.name} lost its '# test: {marker}' line"
    replaced_once = False

    def swap(match: re.Match[str]) -> str:
        nonlocal replaced_once
        if replaced_once:
            return ""  # several marked lines (the upstream servers) become one
        replaced_once = True
        return match.group(1) + replacement

    return pattern.sub(swap, site)


def _test_site(node_port: int, https_port: int, http_port: int, cert: Path, key: Path) -> str:
    site = SITE.read_text()
    site = _replace_marked(site, "upstream", f"server 127.0.0.1:{node_port};")
    site = _replace_marked(site, "http listen", f"listen 127.0.0.1:{http_port};")
    site = _replace_marked(site, "https listen", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace_marked(site, "certificate", f"ssl_certificate {cert};")
    return _replace_marked(site, "certificate key", f"ssl_certificate_key {key};")


def _main_conf(prefix: Path, site: Path) -> str:
    """The parts a distribution's /etc/nginx/nginx.conf would give, privately."""
    # As root, nginx's workers would run as "nobody" and could not use the temp folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "access.log"};
    client_body_temp_path {prefix / "client_body"};
    proxy_temp_path {prefix / "proxy"};
    fastcgi_temp_path {prefix / "fastcgi"};
    uwsgi_temp_path {prefix / "uwsgi"};
    scgi_temp_path {prefix / "scgi"};
    include {site};
}}
"""


@pytest.fixture(scope="module")
def node_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.plugin.databases import _run_async

    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('nginx-db') / 'cb.db'}"
    _run_async(prepare_template(url))
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy(
    node_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Proxy]:
    binary = require_binary("nginx", "nginx")
    tmp_path = tmp_path_factory.mktemp("nginx-node")
    nginx_prefix = tmp_path_factory.mktemp("nginx")
    cert, key = _self_signed(nginx_prefix)
    https_port, http_port = free_tcp_port(), free_tcp_port()
    async with nodes(1, node_database, None, tmp_path) as [node]:
        node_port = int(node.base_url.rsplit(":", 1)[1])
        site = nginx_prefix / "cloudbranch.conf"
        site.write_text(_test_site(node_port, https_port, http_port, cert, key))
        main = nginx_prefix / "nginx.conf"
        main.write_text(_main_conf(nginx_prefix, site))
        argv = [
            binary,
            "-p",
            str(nginx_prefix),
            "-c",
            str(main),
            "-e",
            str(nginx_prefix / "error.log"),
        ]
        with daemon("nginx", argv, nginx_prefix / "nginx.out", tcp_listening(https_port)):
            context = ssl.create_default_context(cafile=str(cert))
            yield Proxy(
                f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", node, context
            )


@pytest_asyncio.fixture(loop_scope="module")
async def api(proxy: Proxy) -> AsyncIterator[Api]:
    connector = aiohttp.TCPConnector(ssl=proxy.ssl_context)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield Api(proxy.https_url, session)


def _assert_security_headers(headers: dict[str, str], what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (what, name, headers)
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), (what, headers)
    assert headers.get("Server") == "nginx", (what, headers)  # no version number


async def test_a_call_through_tls_http_and_websocket(api: Api) -> None:
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1001")
    customer_ws = await customer.connect()

    created = await customer.post("/api/v1/calls", {"intent": "other"})
    assert created.status == 201, created
    _assert_security_headers(created.headers, "POST /api/v1/calls")
    call_id = created.body["call_id"]
    await customer_ws.expect("queue.update", call_id=call_id)

    offer = await desk_ws.expect("call.offered", call_id=call_id)
    accepted = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200, accepted
    await customer_ws.expect("call.assigned", call_id=call_id)
    await customer_ws.expect("media.start", call_id=call_id, role="answerer")
    await desk_ws.expect("media.start", call_id=call_id, role="offerer")

    ended = await desk.post(f"/api/v1/calls/{call_id}/end")
    assert ended.status == 200 and ended.body["state"] == "wrap_up", ended
    await customer_ws.expect("call.ended", call_id=call_id, end_reason="completed")
    wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "balance_inquiry"})
    assert wrapped.status == 200 and wrapped.body["state"] == "ended", wrapped

    # Both sockets are still served after the call: a ping is answered through the proxy.
    for socket in (customer_ws, desk_ws):
        await socket.send({"type": "ping"})
        await socket.expect("pong")
        await socket.close()


async def test_problems_and_unknown_paths_carry_the_headers(api: Api) -> None:
    customer = await api.customer("C1002")
    missing = await customer.get("/api/v1/calls/no-such-call")
    assert missing.status == 404 and missing.headers["Content-Type"].startswith(
        "application/problem+json"
    ), missing
    _assert_security_headers(missing.headers, "problem from the server")
    elsewhere = await api.request("GET", "/etc/passwd")
    assert elsewhere.status == 404
    _assert_security_headers(elsewhere.headers, "path nginx does not serve")
    ready = await api.request("GET", "/readyz")
    assert ready.status == 200, ready


async def test_metrics_are_internal(api: Api, proxy: Proxy) -> None:
    outside = await api.request("GET", "/metrics")
    assert outside.status == 404, outside
    assert "cloudbranch" not in str(outside.body)
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.node.base_url + "/metrics") as direct,
    ):
        assert direct.status == 200  # the node itself still serves its scraper
        assert "# TYPE" in await direct.text()


async def test_plain_http_only_redirects(proxy: Proxy) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.http_url + "/api/v1/calls", allow_redirects=False) as reply,
    ):
        assert reply.status == 301
        assert reply.headers["Location"].startswith("https://")


@pytest.mark.asyncio(loop_scope="module")
async def test_socket_timeout_outlasts_the_heartbeat() -> None:
    site = SITE.read_text()
    block = re.search(r"location = /api/v1/ws \{(.*?)\}", site, re.DOTALL)
    assert block, "no WebSocket location"
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block.group(1))
    longest = max(
        Settings.model_fields[name].default
        for name in ("ws_heartbeat_s", "ws_customer_heartbeat_s")
    )
    assert timeout and int(timeout.group(1)) > 2 * longest
    assert "proxy_set_header Upgrade $http_upgrade;" in site
