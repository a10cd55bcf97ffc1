"""Settings, read once from ``CLOUDBRANCH_*`` environment variables (and an optional
env-style file named by ``CLOUDBRANCH_SETTINGS_FILE``).

Every knob the service reads is declared here; ``deploy/`` is checked against this
class so a deployment cannot pass a setting nobody reads.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.routing.model import RoutingPolicy

DEV_SECRET = "cloudbranch-development-secret-do-not-use-in-production"
# Outside development mode every shared secret must have at least this many bytes.
_MIN_SECRET = 32
_SECRETS = ("jwt_secret", "redirect_secret", "turn_secret", "customer_jwt_secret", "metrics_token")


LivenessKind = Literal["colour", "head_turn"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDBRANCH_", extra="ignore", frozen=True)

    # -- storage and nodes ------------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///var/cloudbranch.db"
    redis_url: str | None = None
    node_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    dev_mode: bool = False
    host: str = "127.0.0.1"
    port: int = 8080

    # -- logging -----------------------------------------------------------------
    log_format: Literal["console", "json"] | None = None  # None: console in dev mode
    log_level: str = "INFO"

    # -- tokens ------------------------------------------------------------------
    # Signs desk (specialist, supervisor) tokens and, in development, test tokens.
    jwt_secret: SecretStr | None = None
    # Staff access tokens are short-lived; a desk keeps working by refreshing them
    # (POST /api/v1/desk/refresh) within its session, which lasts staff_session_ttl_s.
    token_ttl_s: int = Field(default=15 * 60, ge=60, le=7 * 24 * 3600)
    # Customer tokens come from the bank's identity provider: HS256 shared secret
    # or RS256 public key (PEM), with this issuer.
    customer_jwt_secret: SecretStr | None = None
    customer_jwt_public_key: str | None = None
    customer_jwt_issuer: str = "bank-idp"
    # The audience the identity provider puts in tokens meant for this service.
    customer_jwt_audience: str = Field(default="cloudbranch", min_length=1, max_length=200)
    redirect_secret: SecretStr | None = None

    # -- routing -------------------------------------------------------------------
    dialect_wait_s: float = Field(default=30.0, ge=0)
    urgent_dialect_wait_s: float = Field(default=10.0, ge=0)
    proficiency_threshold: int = Field(default=3, ge=1, le=5)
    weight_redirect_s: float = Field(default=120.0, ge=0)
    weight_urgent_s: float = Field(default=600.0, ge=0)
    offer_lease_s: float = Field(default=15.0, gt=0, le=300)
    max_consecutive_misses: int = Field(default=3, ge=1)
    presence_ttl_s: float = Field(default=45.0, gt=0)
    # -- routing by need (skills) --
    skill_wait_s: float = Field(
        default=15.0,
        ge=0,
        description="how long a call whose intent needs a skill waits for a specialist"
        " with that skill (and its dialect) before the dialect step",
    )
    urgent_skill_wait_s: float = Field(
        default=5.0, ge=0, description="the skill step's wait for urgent calls"
    )
    wrap_up_max_s: float = Field(default=300.0, gt=0)
    max_queue_wait_s: float = Field(default=1800.0, gt=0)
    # A waiting customer whose app has had no socket this long has hung up.
    abandon_after_s: float = Field(default=120.0, gt=0)
    dispatch_interval_s: float = Field(default=0.25, gt=0, le=5)
    queue_update_interval_s: float = Field(default=15.0, gt=0, le=60)
    handle_time_window: int = Field(default=50, ge=1)

    # -- faults and drain (server/calls/repair.py, server/drain.py) -----------------
    # How often each node reconciles Redis with SQL (a repair needs two passes).
    repair_interval_s: float = Field(default=5.0, gt=0, le=300)
    # On SIGTERM: the longest a node drains before it exits regardless.
    drain_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Database bounds: a statement or a lock wait past these fails (503), and a
    # request that cannot get a pooled connection within pool_timeout_s too.
    db_statement_timeout_s: float = Field(default=10.0, gt=0, le=600)
    db_lock_timeout_s: float = Field(default=5.0, gt=0, le=600)
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=120)

    # -- sockets and bodies ------------------------------------------------------------
    ws_hello_timeout_s: float = Field(default=5.0, gt=0)
    ws_heartbeat_s: float = Field(default=10.0, gt=0)
    # A waiting customer's socket gets a queue.update every queue_update_interval_s
    # and its call is given up only abandon_after_s after the app was last seen, so
    # it is pinged less often than a desk's, whose loss must reach routing at once.
    ws_customer_heartbeat_s: float = Field(default=30.0, gt=0)
    ws_send_queue: int = Field(default=256, ge=8)
    ws_max_message_bytes: int = Field(default=96 * 1024, ge=1024)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # -- HTTP answer checks (server/http/conformance.py) ---------------------------------
    # Check every answer of a registered route against the model, status and problem
    # shape it declares; a mismatch answers 500 response_mismatch naming the route and
    # field. The test servers switch it on; off in production (it validates each answer).
    check_responses: bool = False

    # -- media ---------------------------------------------------------------------------
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: SecretStr | None = None
    turn_ttl_s: int = Field(default=600, ge=60, le=600)
    media_grace_s: float = Field(default=60.0, gt=0)

    # -- scenario redirects (server/redirects) -------------------------------------------
    # The shared HMAC secret itself is ``redirect_secret`` (with the token secrets above).
    # How far a signed timestamp may be from our clock, either way, before it is refused.
    redirect_skew_s: float = Field(default=300.0, gt=0, le=3600)
    # How long a redirect's ticket can still open a call.
    redirect_ticket_ttl_s: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)
    # The app link a ticket is appended to (``?ticket=...``).
    deep_link_base: str = Field(default="cloudbranch://call", min_length=1, max_length=200)

    # -- callbacks (server/callbacks) ------------------------------------------------------
    # Offer a callback once the estimated wait reaches this (an unknown wait counts as long).
    callback_threshold_s: float = Field(default=300.0, ge=0)
    # Local hours in which a callback may ring, "HH:MM-HH:MM" (24:00 allowed as the end;
    # a start after the end wraps past midnight), in callback_timezone.
    callback_hours: str = Field(default="08:00-20:00", max_length=11)
    callback_timezone: str = Field(default="Asia/Shanghai", min_length=1, max_length=64)
    callback_max_attempts_per_day: int = Field(default=2, ge=1, le=10)
    callback_ring_s: float = Field(default=30.0, gt=0, le=300)
    callback_retry_after_s: float = Field(default=600.0, gt=0)
    # Give up (state failed) after this many local days, counting the day of the request.
    callback_max_days: int = Field(default=3, ge=1, le=30)

    @model_validator(mode="after")
    def _callback_hours_and_zone(self) -> Settings:
        from server.local_hours import LocalHours, zone_named

        try:
            LocalHours.parse(self.callback_hours)
        except ValueError as exc:
            raise ValueError(f"CLOUDBRANCH_CALLBACK_HOURS: {exc}") from exc
        try:
            zone_named(self.callback_timezone)
        except ValueError as exc:
            raise ValueError(f"CLOUDBRANCH_CALLBACK_TIMEZONE: {exc}") from exc
        return self

    # -- in-call banking (server/banking, server/operations) ---------------------------------
    branch_timezone: str = "Asia/Shanghai"
    hold_cooling_off_s: float = Field(default=24 * 3600, gt=0)
    # A YAML ruleset to use instead of the packaged default, and one to run in
    # shadow beside it (decisions reported, never enforced).
    risk_ruleset_path: str | None = None
    risk_shadow_ruleset_path: str | None = None
    # Where certificates and statements produced in calls (PDF) are kept.
    documents_dir: str = "var/documents"

    # -- compliance recording (server/recordings, signaling/media/recording) -------------
    # The bank's public key (PEM, inline or a file path), RSA (OAEP) or X25519, that
    # wraps each recording's AES-256-GCM key. Without one, development records in the
    # clear (with a warning) and production refuses to start unless recording is off.
    recording_public_key: str | None = None
    # Record every relayed call (0 turns compliance recording off, and its 409 rule with it).
    recording_enabled: bool = True
    # Where closed segments are stored with the local storage.
    recording_dir: str = "var/recordings"
    # Where open segments are written (encrypted) before they close; node-local disk.
    recording_spool_dir: str = "var/recording-spool"
    # Where closed segments go: a local folder, or S3 with Object Lock (compliance mode).
    recording_storage: Literal["local", "s3"] = "local"
    # The S3 bucket (created with Object Lock enabled) for s3 storage.
    recording_s3_bucket: str | None = None
    # An S3-compatible endpoint; unset: the AWS endpoint.
    recording_s3_endpoint_url: str | None = None
    # The S3 region; unset: the SDK's default chain.
    recording_s3_region: str | None = None
    # Key prefix for every stored object.
    recording_s3_prefix: str = ""
    # Days after the call a recording is kept (unless on legal hold).
    recording_retention_days: int = Field(default=180, ge=1, le=36500)
    # A segment ends at the first keyframe after this many seconds (always by 10 s).
    recording_segment_s: float = Field(default=6.0, gt=0, le=10)
    # Frames a call's recording queue holds before it drops (and says so).
    recording_queue_frames: int = Field(default=2000, ge=10, le=100_000)
    # How often the retention sweeper looks for expired recordings.
    recording_sweep_interval_s: float = Field(default=3600.0, gt=0)
    # Operations refused with 409 recording_unavailable while the call's recording is down.
    recording_required_operations: list[str] = Field(
        default_factory=lambda: [
            "transfer",
            "limit_change",
            "password_reset",
            # the recording is the certification's evidence (server/operations/evidence.py)
            "pension_certification",
        ]
    )
    # -- media node (signaling/media, server/media/nodes.py) ---------------------------------
    # relay: the server terminates both peer connections and forwards encoded media
    # between them (needed for recording); direct: peer to peer, the server only signals.
    media_mode: Literal["relay", "direct"] = "relay"
    # Run a media node inside this server process (relay mode). Off for servers that
    # leave all media to separate ``cloudbranch media-node`` processes.
    media_embedded_node: bool = True
    media_node_capacity: int = Field(default=50, ge=1, le=10_000)
    media_node_heartbeat_s: float = Field(default=2.0, gt=0, le=60)
    # A node whose heartbeat is this old is dead; its calls move to another node.
    media_node_ttl_s: float = Field(default=6.0, gt=0, le=300)

    # -- Janus media backend (server/media/janus) -----------------------------------------
    media_backend: Literal["aiortc", "janus"] = Field(
        default="aiortc",
        description="What carries a media node's calls: aiortc in this process (the "
        "default), or a Janus gateway the node drives (NoSIP legs, recorded by the node).",
    )
    janus_url: str | None = Field(
        default=None,
        description="WebSocket URL of the Janus this media node drives (ws://host:port/); "
        "unset: the node starts and supervises a private Janus on loopback.",
    )
    janus_api_secret: SecretStr | None = Field(
        default=None,
        description="Janus API secret (janus.jcfg api_secret); unset with a private Janus: "
        "a random one per start. Required with CLOUDBRANCH_JANUS_URL.",
    )
    janus_rtp_host: str = Field(
        default="127.0.0.1",
        description="Address of the plain RTP between Janus and the node's recorder "
        "(Janus's NoSIP local_ip, and where the node binds its relay sockets).",
    )
    janus_plain_srtp: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="SDES-SRTP on the plain RTP between Janus and the node (NoSIP's "
        "sdes_mandatory: encrypted and authenticated). auto: on unless "
        "CLOUDBRANCH_JANUS_RTP_HOST is a loopback address (Janus beside the node, the "
        "media never leaving the host's kernel), where it would only cost CPU.",
    )
    janus_ice_enforce_list: list[str] = Field(
        default_factory=list,
        description="Interfaces or addresses a private Janus gathers ICE candidates on "
        "(nat.ice_enforce_list); empty: all but virtual ones.",
    )
    janus_request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Bound on every Janus API request; one that times out marks Janus lost.",
    )
    janus_keepalive_s: float = Field(
        default=20.0,
        gt=0,
        le=55,
        description="Keep-alive period of the Janus session (Janus drops it after 60 s).",
    )

    @model_validator(mode="after")
    def _janus_secret_with_url(self) -> Settings:
        if self.media_backend == "janus" and self.janus_url and self.janus_api_secret is None:
            raise ValueError("CLOUDBRANCH_JANUS_API_SECRET is required with CLOUDBRANCH_JANUS_URL")
        secret = self.janus_api_secret
        if not self.dev_mode and secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError(
                "CLOUDBRANCH_JANUS_API_SECRET is shorter than 32 bytes: "
                "use a random secret of at least 32 bytes outside development mode"
            )
        return self

    # -- video integrity (signaling/integrity, server/integrity) -----------------------------
    # Analyse the customer's video on the media node (relay mode only; direct: unknown).
    integrity_enabled: bool = True
    # Samples per second of the customer's video sent to the analysis worker.
    integrity_sample_fps: float = Field(default=3.0, ge=0.5, le=10)
    # Analysis worker processes per media node (each call's video is pinned to one).
    integrity_workers: int = Field(default=1, ge=1, le=32)
    # Samples of one track waiting for its worker; beyond that they are dropped and counted.
    integrity_queue_samples: int = Field(default=8, ge=1, le=1000)
    # Width in pixels the face detector looks at (smaller is cheaper, misses small faces).
    integrity_face_width: int = Field(default=240, ge=80, le=1280)
    # video_frozen: the picture is unchanged for longer than this while frames keep coming.
    integrity_frozen_after_s: float = Field(default=2.5, gt=0, le=600)
    # video_frozen: largest perceptual-hash distance (bits of 64) still counted as unchanged.
    integrity_frozen_hash_distance: int = Field(default=3, ge=0, le=32)
    # video_frozen: largest mean grey-level difference of a thumbnail counted as unchanged.
    integrity_frozen_pixel_delta: float = Field(default=0.6, ge=0, le=50)
    # video_looped: frames in the run matched against the track's history.
    integrity_loop_run_frames: int = Field(default=12, ge=2, le=300)
    # video_looped: a match's distance over the run's own frame-to-frame change, at most.
    integrity_loop_distance_ratio: float = Field(default=0.5, gt=0, le=1)
    # video_looped: a repeat must be at least this far back (seconds).
    integrity_loop_min_lag_s: float = Field(default=1.0, gt=0, le=600)
    # video_looped: how much of the track's history (seconds) a run is matched against.
    integrity_loop_history_s: float = Field(default=30.0, gt=0, le=600)
    # video_looped: runs changing less than this (grey levels, RMS) are not judged.
    integrity_loop_min_change: float = Field(default=0.5, ge=0, le=50)
    # frame_timing_anomaly: frames over which the RTP interval jitter is measured.
    integrity_timing_window_frames: int = Field(default=45, ge=3, le=1000)
    # frame_timing_anomaly: interval jitter (ms, standard deviation) below which a feed
    # is a metronome, as no camera is.
    integrity_timing_min_jitter_ms: float = Field(default=0.05, ge=0, le=10)
    # frame_timing_anomaly: RTP timestamps running this far (s) ahead of arrival are a jump.
    integrity_timing_jump_s: float = Field(default=2.0, gt=0, le=600)
    # face_absent: no face in the picture for longer than this.
    integrity_face_absent_after_s: float = Field(default=4.0, gt=0, le=600)
    # multiple_faces: consecutive samples with two or more faces before it is raised.
    integrity_multiple_faces_samples: int = Field(default=3, ge=1, le=100)
    # Liveness challenge before these operations: a kind, or kind:large for amounts at or
    # above the risk ruleset's large-amount threshold (transfer amount, new limit).
    liveness_before: list[str] = Field(
        default_factory=lambda: [
            "transfer:large",
            "limit_change:large",
            "password_reset",
            "pension_certification",
        ]
    )
    # Mean seconds between liveness challenges at unpredictable moments of a call; 0: none.
    liveness_random_interval_s: float = Field(default=0.0, ge=0, le=86_400)
    # Kinds of challenge drawn from: colour (screen colours), head_turn.
    liveness_kinds: list[LivenessKind] = Field(
        default_factory=lambda: list[LivenessKind](["colour", "head_turn"]), min_length=1
    )
    # Seconds the app and the video path may lag behind a challenge's deadline.
    liveness_latency_s: float = Field(default=2.0, ge=0, le=10)
    # colour: how far (grey levels) the requested channel must rise above the others.
    liveness_colour_shift: float = Field(default=6.0, gt=0, le=255)
    # head_turn: how far the face must move sideways (fraction of the picture's width).
    liveness_turn_shift: float = Field(default=0.06, gt=0, le=1)
    # Seconds past a challenge's verdict time after which an operation still waiting for
    # it is decided as not passed (the verdict was lost: its node stopped, analysis failed).
    liveness_result_grace_s: float = Field(default=15.0, gt=0, le=600)

    @model_validator(mode="after")
    def _branch_timezone_known(self) -> Settings:
        # Refused at start-up, with the setting's name, rather than on the first
        # operation or stats request that needs the zone.
        from server.local_hours import zone_named

        try:
            zone_named(self.branch_timezone)
        except ValueError as exc:
            raise ValueError(f"CLOUDBRANCH_BRANCH_TIMEZONE: {exc}") from exc
        return self

    # -- security hardening (server/auth/staff.py, server/auth/throttle.py, server/http/edge.py)
    # How long a staff session (and its refresh token) lives, and how long one node
    # may trust its last look at a session or account before asking the database again.
    staff_session_ttl_s: int = Field(default=8 * 3600, ge=300, le=7 * 24 * 3600)
    # How long a node trusts its last look at a staff session or account.
    staff_check_cache_s: float = Field(default=2.0, ge=0, le=10)
    # Failed logins allowed before a temporary lock, per account and per client
    # address, in the ``limits`` notation; the tiers make the lock grow with repeated
    # failures (exponential back-off). The same for bad redirect signatures.
    login_account_limits: str = "5/minute;10/15 minutes;20/hour"
    # Failed logins allowed per client address (limits notation), before a temporary lock.
    login_address_limits: str = "20/minute;100/hour"
    # Bad redirect signatures allowed per client address (limits notation).
    redirect_address_limits: str = "20/minute;200/hour"
    # Reverse proxies (their addresses) whose X-Forwarded-For names the real client.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Failed-login audit entries per minute; the rest are counted into the next one.
    login_audit_per_minute: int = Field(default=20, ge=1)
    # HTTP edges: a request's headers must arrive within this, its body within that.
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # A request's body must arrive within this, else 408.
    http_body_timeout_s: float = Field(default=15.0, gt=0, le=300)
    # The largest request line or header field accepted.
    max_header_bytes: int = Field(default=8190, ge=1024, le=65536)
    # /metrics: open in development; otherwise it needs this bearer token.
    metrics_token: SecretStr | None = None
    # WebSocket message budgets: per message type, a token bucket of ``burst``
    # refilled at ``per_s``; ICE candidates per negotiation (offer/answer/restart).
    ws_message_burst: int = Field(default=60, ge=1)
    # The rate at which each message type's socket budget refills.
    ws_message_per_s: float = Field(default=20.0, gt=0)
    # ICE candidates a client may send per negotiation (offer, answer or restart).
    ws_ice_per_negotiation: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _secrets_outside_development(self) -> Settings:
        if not self.dev_mode and self.jwt_secret is None:
            raise ValueError("CLOUDBRANCH_JWT_SECRET is required unless CLOUDBRANCH_DEV_MODE=1")
        if not self.dev_mode:
            for name in _SECRETS:
                secret: SecretStr | None = getattr(self, name)
                if secret is not None and len(secret.get_secret_value().encode()) < _MIN_SECRET:
                    raise ValueError(
                        f"CLOUDBRANCH_{name.upper()} is shorter than {_MIN_SECRET} bytes: "
                        "use a random secret of at least 32 bytes outside development mode"
                    )
        return self

    @property
    def signing_secret(self) -> str:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_SECRET

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("console" if self.dev_mode else "json")

    def routing_policy(self) -> RoutingPolicy:
        return RoutingPolicy(
            dialect_wait_s=self.dialect_wait_s,
            urgent_dialect_wait_s=self.urgent_dialect_wait_s,
            proficiency_threshold=self.proficiency_threshold,
            weight_redirect_s=self.weight_redirect_s,
            weight_urgent_s=self.weight_urgent_s,
            offer_lease_s=self.offer_lease_s,
            max_consecutive_misses=self.max_consecutive_misses,
            presence_ttl_s=self.presence_ttl_s,
            skill_wait_s=self.skill_wait_s,
            urgent_skill_wait_s=self.urgent_skill_wait_s,
        )

    def sqlite_path(self) -> Path | None:
        """The file behind an SQLite URL, so its folder can be created."""
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            rest = self.database_url[len(prefix) :]
            return None if rest in ("", ":memory:") else Path(rest)
        return None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, the optional settings file, then overrides."""
    env_file = os.environ.get("CLOUDBRANCH_SETTINGS_FILE")
    return Settings(_env_file=env_file, **overrides)
