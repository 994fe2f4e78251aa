"""The Kubernetes manifests (ops/kubernetes) are valid and agree with the code.

No cluster runs here: every document the kustomization lists is validated
offline against the Kubernetes API schemas bundled by ``kubernetes-validate``
(strict: an unknown field is an error), and cross-checked with the code: each
process runs its module on its settings' port, probes its health routes,
scales where it can, gets only its own role's database URL, and the
disruption budgets cover the command service and the projector.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from command_service.settings import CommandServiceSettings, RelaySettings, TransferSagaSettings
from projector.settings import ProjectorSettings
from query_service.settings import QueryServiceSettings
from shared_kernel.settings import CommonSettings
from tests.operations.test_compose import DEFAULT_PORTS
from tests.support.processes import SERVICES

MANIFESTS = Path(__file__).resolve().parents[2] / "ops" / "kubernetes"
#: The Kubernetes release the manifests are held to (schemas bundled by kubernetes-validate).
KUBERNETES_VERSION = "1.30.0"

#: Deployment name -> (the settings of its process, the module SERVICES runs, least replicas).
PROCESSES: dict[str, tuple[type[CommonSettings], str, int]] = {
    "command-service": (CommandServiceSettings, SERVICES["command"][0], 2),
    "outbox-relay": (RelaySettings, SERVICES["relay"][0], 2),
    "transfer-saga": (TransferSagaSettings, SERVICES["saga"][0], 2),
    "projector": (ProjectorSettings, SERVICES["projector"][0], 2),
    "query-service": (QueryServiceSettings, SERVICES["query"][0], 2),
}


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        found += [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]
    return found


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    """The one container of a Deployment's or a Job's pod template."""
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_every_file_of_the_directory_is_listed_and_every_document_is_valid() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    on_disk = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    for doc in documents():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kubectl_renders_the_same_documents_when_it_is_installed() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the documents were validated file by file")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True
    ).stdout
    names = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered) if d}
    assert names == {(d["kind"], d["metadata"]["name"]) for d in documents()}


def test_each_process_runs_its_module_on_its_port_with_its_health_probes() -> None:
    deployments = of_kind("Deployment")
    config = of_kind("ConfigMap")["ledger-config"]["data"]
    assert set(deployments) == set(PROCESSES)
    for name, (settings, module, least_replicas) in PROCESSES.items():
        spec = container(deployments[name])
        assert spec["command"] == ["python", "-m", module], name
        (port,) = spec["ports"]
        variable = next(v for v in DEFAULT_PORTS if v.lower() in settings.model_fields)
        assert port["containerPort"] == DEFAULT_PORTS[variable] == int(config[variable]), name
        assert spec["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert spec["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert {"cpu", "memory"} <= set(spec["resources"]["requests"]), name
        assert deployments[name]["spec"]["replicas"] >= least_replicas, name
    assert config["HOST"] == "0.0.0.0"  # a pod must listen beyond its loopback


def test_each_process_gets_only_its_own_roles_database_url() -> None:
    secret = of_kind("Secret")["ledger-secrets"]["stringData"]
    for name, (settings, _module, _replicas) in PROCESSES.items():
        spec = container(of_kind("Deployment")[name])
        assert "secretRef" not in str(spec.get("envFrom")), name  # no secret handed over whole
        keys = {item["valueFrom"]["secretKeyRef"]["key"] for item in spec["env"]}
        assert keys <= set(secret), name
        urls = {key for key in keys if key.endswith("DATABASE_URL")}
        assert urls == {f"{settings.database_role}_database_url".upper()}, name
    migrate = container(of_kind("Job")["ledger-migrate"])
    assert migrate["command"] == ["python", "-m", "schema.migrate"]


def test_disruption_budgets_keep_commands_and_projection_going() -> None:
    budgets = of_kind("PodDisruptionBudget")
    selected = {
        budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for budget in budgets.values()
    }
    assert {"command-service", "projector"} <= selected
    services = of_kind("Service")
    for name in ("command-service", "query-service", "projector"):
        assert services[name]["spec"]["selector"] == {"app.kubernetes.io/name": name}
