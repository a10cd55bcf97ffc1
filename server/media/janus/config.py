"""A Janus configuration for one media node: what it may load and where it listens.

Only two modules are ever loaded: the NoSIP plugin (a WebRTC leg on one side,
plain RTP to this node on the other) and the WebSocket transport, bound to one
address. The generated folders hold symbolic links to those two libraries only,
so no demo plugin, admin transport or event handler can be switched on by a
packaged default. The admin API is off, every request needs the API secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["JanusLayout", "JanusOptions", "deploy_configuration", "write_configuration"]

DEBIAN_LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
PLUGIN = "libjanus_nosip.so"
TRANSPORT = "libjanus_websockets.so"
# Everything else Debian's janus 1.1.2 ships, switched off by name where the
# configuration must point at the packaged folders (deploy/janus/).
DEBIAN_OTHER_PLUGINS = (
    "audiobridge", "duktape", "echotest", "lua", "recordplay", "sip",
    "streaming", "textroom", "videocall", "videoroom", "voicemail",
)  # fmt: skip
DEBIAN_OTHER_TRANSPORTS = ("http", "mqtt", "nanomsg", "pfunix", "rabbitmq")
DEBIAN_EVENT_HANDLERS = ("gelfevh", "mqttevh", "nanomsgevh", "rabbitmqevh", "sampleevh", "wsevh")
DEBIAN_LOGGERS = ("jsonlog",)
SECRET_PLACEHOLDER = "@JANUS_API_SECRET@"


@dataclass(frozen=True, slots=True)
class JanusOptions:
    """What a private or deployed Janus is told; all of it comes from Settings."""

    api_secret: str
    ws_host: str = "127.0.0.1"
    ws_port: int = 8188
    # Address NoSIP binds its plain RTP sockets to, and writes into its SDP.
    rtp_host: str = "127.0.0.1"
    rtp_port_range: tuple[int, int] = (20000, 40000)
    # ICE: the STUN server Janus uses to learn its public address, and the
    # interfaces it gathers candidates on (empty: all but the ignore list).
    stun_server: tuple[str, int] | None = None
    ice_enforce_list: Sequence[str] = ()
    ice_ignore_list: Sequence[str] = ("vmnet", "docker", "veth")
    # Media threads shared by all handles (Janus's default is one per handle, which
    # costs a thread and its wake-ups per leg).
    event_loops: int = 2
    debug_level: int = 3
    session_timeout_s: int = 60
    libraries: Path = DEBIAN_LIBRARIES
    extra_nat: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JanusLayout:
    """Where a written configuration lives."""

    root: Path
    configs: Path
    plugins: Path
    transports: Path

    @property
    def main(self) -> Path:
        return self.configs / "janus.jcfg"


def _quote(value: str) -> str:
    return json.dumps(value)  # libconfig strings take JSON's escapes


def _block(name: str, items: dict[str, str | int | bool]) -> str:
    lines = [f"{name}: {{"]
    for key, value in items.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = _quote(value)
        lines.append(f"\t{key} = {text}")
    lines.append("}")
    return "\n".join(lines)


def main_configuration(options: JanusOptions, layout: JanusLayout) -> str:
    general: dict[str, str | int | bool] = {
        "configs_folder": str(layout.configs),
        "plugins_folder": str(layout.plugins),
        "transports_folder": str(layout.transports),
        "events_folder": str(layout.root / "none"),
        "loggers_folder": str(layout.root / "none"),
        "debug_level": options.debug_level,
        "debug_timestamps": True,
        "api_secret": options.api_secret,
        "session_timeout": options.session_timeout_s,
        "reclaim_session_timeout": 0,
        "server_name": "cloudbranch-media",
        "log_to_stdout": True,
    }
    if options.event_loops > 0:
        general["event_loops"] = options.event_loops
    nat: dict[str, str | int | bool] = {
        "nice_debug": False,
        "full_trickle": False,
        "ignore_mdns": True,
        "ice_ignore_list": ",".join(options.ice_ignore_list),
    }
    if options.ice_enforce_list:
        nat["ice_enforce_list"] = ",".join(options.ice_enforce_list)
    if options.stun_server is not None:
        nat["stun_server"], nat["stun_port"] = options.stun_server[0], options.stun_server[1]
    nat.update(options.extra_nat)
    media: dict[str, str | int | bool] = {"ipv6": False}
    return "\n".join(
        [
            _block("general", general),
            _block("media", media),
            _block("nat", nat),
            _block("plugins", {}),
            _block("transports", {}),
            _block("events", {"broadcast": False}),
            "",
        ]
    )


def nosip_configuration(options: JanusOptions) -> str:
    low, high = options.rtp_port_range
    return _block(
        "general",
        {
            "local_ip": options.rtp_host,
            "sdp_ip": options.rtp_host,
            "rtp_port_range": f"{low}-{high}",
            "events": False,
        },
    )


def websockets_configuration(options: JanusOptions) -> str:
    general = _block(
        "general",
        {
            "json": "plain",
            "ws": True,
            "ws_port": options.ws_port,
            "ws_ip": options.ws_host,
            "wss": False,
        },
    )
    admin = _block("admin", {"admin_ws": False, "admin_wss": False})
    return f"{general}\n{admin}\n"


def write_configuration(options: JanusOptions, root: Path) -> JanusLayout:
    """Write the configuration under ``root`` (created, private to this user)."""
    layout = JanusLayout(root, root / "etc", root / "plugins", root / "transports")
    for folder in (root, layout.configs, layout.plugins, layout.transports, root / "none"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder, name, kind in (
        (layout.plugins, PLUGIN, "plugins"),
        (layout.transports, TRANSPORT, "transports"),
    ):
        target = options.libraries / kind / name
        if not target.exists():
            raise FileNotFoundError(f"Janus {kind[:-1]} {target} is missing (apt install janus)")
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(target)
    files = {
        layout.main: main_configuration(options, layout),
        layout.configs / "janus.plugin.nosip.jcfg": nosip_configuration(options),
        layout.configs / "janus.transport.websockets.jcfg": websockets_configuration(options),
    }
    for path, text in files.items():
        path.write_text(text)
        os.chmod(path, 0o600)  # it holds the API secret
    return layout


def _libraries(names: Sequence[str]) -> str:
    return ",".join(f"libjanus_{name}.so" for name in names)


def deploy_configuration(options: JanusOptions) -> dict[str, str]:
    """deploy/janus/: the same settings for Debian's packaged folders, everything but
    NoSIP and WebSockets disabled by name, the API secret left as a placeholder the
    container fills in at start (see deploy/janus/README.md)."""
    configs = Path("/etc/janus")
    layout = JanusLayout(
        Path("/var/lib/janus"),
        configs,
        options.libraries / "plugins",
        options.libraries / "transports",
    )
    text = main_configuration(replace(options, api_secret=SECRET_PLACEHOLDER), layout)
    # Packaged folders: name what must stay off instead of linking what may load.
    text = text.replace(
        f'\tevents_folder = "{layout.root / "none"}"',
        f'\tevents_folder = "{options.libraries / "events"}"',
    ).replace(
        f'\tloggers_folder = "{layout.root / "none"}"',
        f'\tloggers_folder = "{options.libraries / "loggers"}"',
    )
    text = text.replace(
        "plugins: {\n}", _block("plugins", {"disable": _libraries(DEBIAN_OTHER_PLUGINS)})
    )
    text = text.replace(
        "transports: {\n}", _block("transports", {"disable": _libraries(DEBIAN_OTHER_TRANSPORTS)})
    )
    text = text.replace(
        "events: {\n\tbroadcast = false\n}",
        _block("events", {"broadcast": False, "disable": _libraries(DEBIAN_EVENT_HANDLERS)}),
    )
    text += _block("loggers", {"disable": _libraries(DEBIAN_LOGGERS)}) + "\n"
    return {
        "janus.jcfg": text,
        "janus.plugin.nosip.jcfg": nosip_configuration(options) + "\n",
        "janus.transport.websockets.jcfg": websockets_configuration(options),
    }
