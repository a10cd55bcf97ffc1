"""The Kubernetes manifests in ``deploy/k8s``: valid against the Kubernetes schemas
(``kubernetes-validate`` ships them, so this runs offline), and passing the
application only settings it reads, with values its own validation accepts."""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from server.cli import main as cli_main
from server.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
TURN_CONF = K8S.parent / "coturn" / "turnserver.conf"
# The oldest Kubernetes still commonly supported, and the newest the package knows.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
APP_IMAGE = "cloudbranch"
SETTINGS = {f"CLOUDBRANCH_{name.upper()}" for name in Settings.model_fields}
# Set per pod (its name), not in the ConfigMap.
PER_POD = {"CLOUDBRANCH_NODE_ID"}
# Commands the manifests run that the application does not have yet.
PENDING_COMMANDS: set[str] = set()
DRAIN_BOUND_S = 30


@functools.cache
def _documents() -> list[tuple[str, dict[str, Any]]]:
    """Every manifest document (parsed once; copy one before changing it)."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def _named(kind: str, name: str) -> dict[str, Any]:
    for _, document in _documents():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def _pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, document in _documents():
        if document["kind"] in ("Deployment", "Job"):
            yield document["metadata"]["name"], document["spec"]["template"]


def _app_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, template in _pod_templates():
        for container in template["spec"]["containers"]:
            if container["image"] == APP_IMAGE:
                yield f"{name}/{container['name']}", container


def _config() -> dict[str, str]:
    data: dict[str, str] = _named("ConfigMap", "cloudbranch-settings")["data"]
    return data


def _secrets() -> dict[str, str]:
    data: dict[str, str] = _named("Secret", "cloudbranch-secrets")["stringData"]
    return data


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert kustomization["namespace"] == "cloudbranch"
    assert {image["name"] for image in kustomization["images"]} == {APP_IMAGE}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    documents = _documents()
    assert len(documents) >= 12
    for filename, document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{filename}: {document['kind']} {document['metadata']['name']}: {exc}")


def test_the_validation_catches_mistakes() -> None:
    """The check above can fail: a wrong type and an unknown field are refused."""
    deployment = _named("Deployment", "cloudbranch-api")
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    unknown_field = copy.deepcopy(deployment)
    unknown_field["spec"]["template"]["spec"]["containers"][0]["readyProbe"] = {}
    for broken in (wrong_type, unknown_field):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_every_setting_the_manifests_pass_is_read_by_the_application() -> None:
    sources = {
        "ConfigMap cloudbranch-settings": _config(),
        "Secret cloudbranch-secrets": _secrets(),
    }
    for where, data in sources.items():
        unknown = set(data) - SETTINGS
        assert not unknown, f"{where} sets settings nobody reads: {sorted(unknown)}"
    containers = list(_app_containers())
    assert {name for name, _ in containers} >= {
        "cloudbranch-api/api",
        "cloudbranch-media/media",
        "cloudbranch-migrate/migrate",
    }
    for name, container in containers:
        passed = {entry["name"] for entry in container.get("env", [])}
        unknown = passed - SETTINGS
        assert not unknown, f"{name} passes settings nobody reads: {sorted(unknown)}"
        refs = {
            ("ConfigMap", e["configMapRef"]["name"])
            if "configMapRef" in e
            else ("Secret", e["secretRef"]["name"])
            for e in container["envFrom"]
        }
        assert refs == {("ConfigMap", "cloudbranch-settings"), ("Secret", "cloudbranch-secrets")}


def test_the_settings_are_valid_for_the_application(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read back through the environment, as a pod would: lists as JSON, numbers as text."""
    for name in [n for n in os.environ if n.startswith("CLOUDBRANCH_")]:
        monkeypatch.delenv(name)
    for name, value in {**_config(), **_secrets(), "CLOUDBRANCH_NODE_ID": "pod-1"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert not settings.dev_mode
    assert settings.redis_url and settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.turn_urls and settings.turn_secret is not None
    assert settings.effective_log_format == "json"
    assert settings.host == "0.0.0.0" and settings.port == 8080


def test_every_setting_is_set_or_documented() -> None:
    """An operator finds every knob in settings.yaml or secrets.yaml."""
    text = (K8S / "settings.yaml").read_text() + (K8S / "secrets.yaml").read_text()
    documented = set(re.findall(r"#\s*(CLOUDBRANCH_[A-Z0-9_]+):", text))
    assert documented <= SETTINGS, f"documented but not read: {sorted(documented - SETTINGS)}"
    covered = set(_config()) | set(_secrets()) | documented | PER_POD
    missing = SETTINGS - covered
    assert not missing, f"settings deploy/k8s does not mention: {sorted(missing)}"
    for name, container in _app_containers():
        if not name.startswith("cloudbranch-migrate"):
            env = {e["name"]: e for e in container.get("env", [])}
            node_id = env["CLOUDBRANCH_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
            assert node_id == "metadata.name", name


def test_commands_exist(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    commands = set(re.search(r"\{([a-z,-]+)\}", capsys.readouterr().out).group(1).split(","))
    for name, container in _app_containers():
        program, subcommand = container["command"][:2]
        assert program == "cloudbranch", name
        assert subcommand in commands | PENDING_COMMANDS, f"{name}: no command {subcommand}"


def test_api_nodes_are_probed_drained_budgeted_and_scaled() -> None:
    deployment = _named("Deployment", "cloudbranch-api")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pod["spec"]["terminationGracePeriodSeconds"] >= DRAIN_BOUND_S + 10
    [api] = pod["spec"]["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = _named("PodDisruptionBudget", "cloudbranch-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _named("HorizontalPodAutoscaler", "cloudbranch-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "cloudbranch-api"
    assert hpa["spec"]["minReplicas"] >= 2
    service = _named("Service", "cloudbranch-api")
    assert service["spec"]["selector"].items() <= labels.items()


def test_every_container_has_requests_and_limits() -> None:
    for name, template in _pod_templates():
        for container in template["spec"]["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert {"cpu", "memory"} <= resources["limits"].keys(), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_media_and_turn_use_host_networking_one_per_host() -> None:
    for name in ("cloudbranch-media", "coturn"):
        spec = _named("Deployment", name)["spec"]["template"]["spec"]
        assert spec["hostNetwork"] is True, name
        assert spec["dnsPolicy"] == "ClusterFirstWithHostNet", name
        anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert anti[0]["topologyKey"] == "kubernetes.io/hostname", name
    assert (
        _named("Deployment", "cloudbranch-media")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        >= DRAIN_BOUND_S + 10
    )


def test_media_nodes_run_recording_and_probed_while_the_api_pods_relay_nothing() -> None:
    """The media Deployment carries every relayed call: at least two nodes (a dead
    one's calls move to the other), probed where the node serves its probes, with
    writable recording folders; the API pods run no embedded node beside them."""
    media = _named("Deployment", "cloudbranch-media")
    assert media["spec"]["replicas"] >= 2
    [container] = media["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["cloudbranch", "media-node"]
    port = int(next(e["value"] for e in container["env"] if e["name"] == "CLOUDBRANCH_PORT"))
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    config = _config()
    assert config["CLOUDBRANCH_MEDIA_MODE"] == "relay"
    assert config["CLOUDBRANCH_RECORDING_ENABLED"] == "true"
    # The root filesystem is read-only: the spool and the local store must be mounts.
    assert config["CLOUDBRANCH_RECORDING_SPOOL_DIR"] in mounted
    assert config["CLOUDBRANCH_RECORDING_DIR"] in mounted
    assert config["CLOUDBRANCH_MEDIA_EMBEDDED_NODE"] == "false"
    # The node records into the API's database: it gets the same secret.
    refs = {ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref}
    assert refs == {"cloudbranch-secrets"} and "CLOUDBRANCH_DATABASE_URL" in _secrets()


def test_coturn_runs_the_repository_configuration_with_the_shared_secret() -> None:
    config = _named("ConfigMap", "coturn-config")["data"]["turnserver.conf"]
    assert config == TURN_CONF.read_text(), "deploy/k8s/coturn.yaml drifted from turnserver.conf"
    [container] = _named("Deployment", "coturn")["spec"]["template"]["spec"]["containers"]
    assert "--static-auth-secret=$(TURN_SECRET)" in container["args"]
    [secret_env] = [e for e in container["env"] if e["name"] == "TURN_SECRET"]
    ref = secret_env["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "cloudbranch-secrets" and ref["key"] in _secrets()
    assert ref["key"] == "CLOUDBRANCH_TURN_SECRET"


def test_migrations_run_as_a_job() -> None:
    job = _named("Job", "cloudbranch-migrate")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["cloudbranch", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_postgres_and_redis_are_external_services() -> None:
    for name, port in (("postgres", 5432), ("redis", 6379)):
        service = _named("Service", name)
        assert service["spec"]["type"] == "ExternalName"
        assert service["spec"]["ports"][0]["port"] == port
    assert "@postgres:5432/" in _secrets()["CLOUDBRANCH_DATABASE_URL"]
    assert _secrets()["CLOUDBRANCH_REDIS_URL"].startswith("redis://redis:6379/")


def test_both_media_node_deployments_mount_the_recording_folders() -> None:
    """Whichever backend carries the calls, its media container records: with a
    read-only root filesystem the spool (open segments, salvaged after a restart)
    and the local store must be mounts, on a volume the pod keeps across restarts."""
    config = _config()
    for name in ("cloudbranch-media", "cloudbranch-media-janus"):
        spec = _named("Deployment", name)["spec"]["template"]["spec"]
        [media] = [c for c in spec["containers"] if c["image"] == APP_IMAGE]
        mounts = {m["mountPath"]: m for m in media["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for setting in ("CLOUDBRANCH_RECORDING_SPOOL_DIR", "CLOUDBRANCH_RECORDING_DIR"):
            mount = mounts.get(config[setting])
            assert mount is not None, f"{name} does not mount {setting}"
            assert "emptyDir" in volumes[mount["name"]], f"{name}: {setting} is not on a pod volume"
        spool, store = (
            mounts[config["CLOUDBRANCH_RECORDING_SPOOL_DIR"]],
            mounts[config["CLOUDBRANCH_RECORDING_DIR"]],
        )
        assert (spool["name"], spool.get("subPath")) != (store["name"], store.get("subPath"))
