"""compose.yaml, the Dockerfile and the Procfile agree with each other and with the code.

Docker is not run here (CI has no engine); instead the files are read and
cross-checked, so a renamed module, a port that moved or a service that lost
its dependency is caught by ``make test`` rather than by a user's
``docker compose up``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from command_service.settings import CommandServiceSettings, RelaySettings, TransferSagaSettings
from projector.settings import ProjectorSettings
from query_service.settings import QueryServiceSettings
from shared_kernel.settings import DATABASE_ROLES, DEFAULT_ROLE_NAMES
from tests.support.processes import SERVICES

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"postgres", "redis"}
APPS = {"command", "relay", "saga", "projector", "query"}
OBSERVABILITY = {"prometheus", "grafana", "jaeger"}

#: Default port of each process, read from its settings class (env unset).
DEFAULT_PORTS = {
    "COMMAND_SERVICE_PORT": CommandServiceSettings.model_fields["command_service_port"].default,
    "RELAY_PORT": RelaySettings.model_fields["relay_port"].default,
    "TRANSFER_SAGA_PORT": TransferSagaSettings.model_fields["transfer_saga_port"].default,
    "PROJECTOR_PORT": ProjectorSettings.model_fields["projector_port"].default,
    "QUERY_SERVICE_PORT": QueryServiceSettings.model_fields["query_service_port"].default,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = shlex.split(command)
    return entries


def module_of(command: list[str]) -> str:
    assert command[:2] in (["python", "-m"], [".venv/bin/python", "-m"]), command
    return command[2]


def published_ports(service: dict[str, Any]) -> dict[int, str]:
    """Container port -> published host port (possibly an ${VAR:-default})."""
    ports = {}
    for entry in service.get("ports", []):
        host, container = str(entry).rsplit(":", 1)
        ports[int(container)] = host
    return ports


def test_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == INFRA | APPS | OBSERVABILITY | {"migrate"}


def test_infrastructure_images_and_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


#: The database role each app connects as (its settings class says which).
APP_ROLES = {
    "command": CommandServiceSettings.database_role,
    "relay": RelaySettings.database_role,
    "saga": TransferSagaSettings.database_role,
    "projector": ProjectorSettings.database_role,
    "query": QueryServiceSettings.database_role,
}


def role_variable(role: str | None) -> str:
    return f"{str(role).upper()}_DATABASE_URL"


def test_app_urls_name_compose_services(services: dict[str, dict[str, Any]]) -> None:
    postgres_env = services["postgres"]["environment"]
    for name in APPS | {"migrate"}:
        environment = services[name]["environment"]
        redis = urlsplit(environment["REDIS_URL"])
        assert redis.hostname in services and redis.hostname == "redis", name
        assert redis.port in published_ports(services["redis"])
        variables = (
            [role_variable(role) for role in DATABASE_ROLES]
            if name == "migrate"
            else [role_variable(APP_ROLES[name])]
        )
        for variable in variables:
            database = urlsplit(environment[variable])
            assert database.hostname in services and database.hostname == "postgres", name
            assert database.port in published_ports(services["postgres"])
            assert database.path.lstrip("/") == postgres_env["POSTGRES_DB"]
            # The eventsourcing library insists on a password; the image needs one too.
            assert database.password, (name, variable)
    owner = urlsplit(services["migrate"]["environment"]["DATABASE_URL"])
    assert owner.username == postgres_env["POSTGRES_USER"]
    assert owner.password == postgres_env["POSTGRES_PASSWORD"]
    assert owner.hostname == "postgres"


def test_each_app_connects_as_its_own_role_never_the_owner(
    services: dict[str, dict[str, Any]],
) -> None:
    migrate_env = services["migrate"]["environment"]
    for name in APPS:
        environment = services[name]["environment"]
        assert "DATABASE_URL" not in environment, f"{name} must not get the owner's password"
        role = APP_ROLES[name]
        assert role is not None, name
        mine = role_variable(role)
        assert environment[mine] == migrate_env[mine], f"{name}: migrate sets its role's password"
        assert urlsplit(environment[mine]).username == DEFAULT_ROLE_NAMES[role]
        others = {role_variable(other) for other in DATABASE_ROLES} - {mine}
        assert not others & set(environment), f"{name} gets another role's password"


def test_each_app_listens_where_it_publishes_and_is_checked(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APPS:
        service = services[name]
        _, port_variable = SERVICES[name]
        port = int(service["environment"][port_variable])
        assert port == DEFAULT_PORTS[port_variable], f"{name}: same port as `make run`"
        assert published_ports(service) == {port: str(port)}, name
        # Inside a container the service must listen on every interface.
        assert service["environment"]["HOST"] == "0.0.0.0"
        check = service["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"], name
        assert f"http://127.0.0.1:{port}/health/ready" in check[3], name
        compile(check[3], f"{name} healthcheck", "exec")


def test_ports_are_distinct(services: dict[str, dict[str, Any]]) -> None:
    published = [
        host for service in services.values() for host in published_ports(service).values()
    ]
    assert len(published) == len(set(published))


def test_dependencies_wait_for_health_and_migration(services: dict[str, dict[str, Any]]) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APPS:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services


def test_apps_are_built_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name in APPS | {"migrate"}:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build["context"]
        assert (ROOT / context / "Dockerfile").is_file(), name


def test_every_procfile_process_has_a_compose_service_running_the_same_module(
    services: dict[str, dict[str, Any]],
) -> None:
    processes = procfile()
    assert set(processes) == APPS
    for name, command in processes.items():
        assert module_of(services[name]["command"]) == module_of(command), name
        assert SERVICES[name][0] == module_of(command), f"{name}: tests start the same module"


def test_every_command_names_a_module_that_exists(services: dict[str, dict[str, Any]]) -> None:
    commands = [service["command"] for service in services.values() if "build" in service]
    commands += list(procfile().values())
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for match in re.finditer(r"^(?:CMD|ENTRYPOINT)\s+(\[.*\])\s*$", dockerfile, re.MULTILINE):
        commands.append(json.loads(match.group(1)))
    assert len(commands) >= 2 * len(APPS) + 2
    for command in commands:
        assert runnable(module_of(command)), f"`python -m {module_of(command)}` has nothing to run"


def runnable(module: str) -> bool:
    """True when ``python -m module`` would find code to run (a package needs __main__)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


def test_dockerfile_copies_every_package_it_installs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE))
    for package in ("shared_kernel", "command_service", "query_service", "projector", "schema"):
        assert package in copied, package
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and ".git" in ignored


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of each bind mount."""
    found = {}
    for volume in service.get("volumes", []):
        host, container = str(volume).split(":")[:2]
        found[container] = host
    return found


def test_prometheus_scrapes_every_process_where_it_listens(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    [config_flag] = [a for a in prometheus["command"] if a.startswith("--config.file=")]
    config_path = config_flag.removeprefix("--config.file=")
    host_path = mounts(prometheus)[config_path]
    config = yaml.safe_load((ROOT / host_path).read_text(encoding="utf-8"))
    targets = {
        (target, static["labels"]["process"])
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = set()
    for name in APPS:
        _, port_variable = SERVICES[name]
        expected.add((f"{name}:{services[name]['environment'][port_variable]}", name))
    assert targets == expected
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
    assert set(prometheus["depends_on"]) == APPS


def test_grafana_is_provisioned_with_prometheus_and_the_ledger_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    volumes = mounts(grafana)
    provisioning = ROOT / volumes["/etc/grafana/provisioning"]
    [datasource] = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus" and url.port in published_ports(services["prometheus"])
    [provider] = yaml.safe_load(
        (provisioning / "dashboards" / "ledger.yml").read_text(encoding="utf-8")
    )["providers"]
    dashboards = ROOT / volumes[provider["options"]["path"]]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"])
    dashboard = json.loads((dashboards / home.rsplit("/", 1)[1]).read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 8
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_tracing_is_off_unless_an_otlp_endpoint_is_given(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    environment = compose["x-app-environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
    for name in APPS:
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in services[name]["environment"], name
    jaeger = services["jaeger"]
    assert jaeger["profiles"] == ["tracing"]
    assert 4318 in published_ports(jaeger)  # OTLP over HTTP, what the processes export
