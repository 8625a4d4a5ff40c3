"""The scale-out deployment files (docker/): a 3-node replica set, its init, two farm replicas.

No Docker engine runs in CI and the ``docker compose`` plugin is not installed here, so
the structure is checked with PyYAML; when ``docker compose`` or ``docker-compose`` is
on the PATH, its own ``config`` validation runs too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_farm_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
MONGO_NODES = ("mongo1", "mongo2", "mongo3")
FARMS = ("farm1", "farm2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def test_three_mongodb_nodes_run_one_replica_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for node in MONGO_NODES:
        service = services[node]
        assert service["image"].startswith("mongo:")
        assert "--replSet rs0" in _command(service)
        assert "--bind_ip_all" in _command(service)
        assert "healthcheck" in service
    volumes = {v.split(":")[0] for node in MONGO_NODES for v in services[node]["volumes"]}
    assert volumes == set(MONGO_NODES) <= set(compose["volumes"])


def test_one_shot_init_service_initiates_the_replica_set_with_every_node(compose: dict[str, Any]) -> None:
    init = compose["services"]["mongo-init"]
    command = _command(init)
    assert command.startswith("mongosh")
    assert "--eval" in command and "rs.initiate(" in command
    assert re.findall(r'host: "(mongo\d):27017"', command) == list(MONGO_NODES)
    assert 'rs.initiate({\n    _id: "rs0"' in command or '_id: "rs0"' in command
    assert str(init["restart"]) == "no"
    assert {name: dep["condition"] for name, dep in init["depends_on"].items()} == {
        node: "service_healthy" for node in MONGO_NODES
    }


def test_two_farm_replicas_share_the_replica_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ports = set()
    for name in FARMS:
        farm = services[name]
        assert farm["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / farm["build"]["context"] / farm["build"]["dockerfile"]).is_file()
        url = farm["environment"]["MONGODB_URL"]
        assert all(f"{node}:27017" in url for node in MONGO_NODES) and "replicaSet=rs0" in url
        assert farm["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
        mounts = [v.split(":") for v in farm["volumes"]]
        assert ["./farm.yml", "/app/config/farm.yml", "ro"] in mounts
        ports.update(farm["ports"])
    assert len(ports) == len(FARMS)  # each replica on its own host port
    proxy = services["proxy"]
    assert set(proxy["depends_on"]) == set(FARMS)
    conf = (DOCKER / "nginx.conf").read_text(encoding="utf-8")
    assert all(f"server {farm}:8080" in conf for farm in FARMS)
    assert "Upgrade $http_upgrade" in conf  # web chat sockets pass through


def test_farm_config_of_the_replicas_uses_the_mongodb_store(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"  # laid out as in the image: /app/config/{farm.yml,demo/}
    config_dir.mkdir()
    (config_dir / "farm.yml").write_text((DOCKER / "farm.yml").read_text(encoding="utf-8"), encoding="utf-8")
    (config_dir / "demo").symlink_to(ROOT / "config" / "demo", target_is_directory=True)
    config = load_farm_config(config_dir / "farm.yml", environ={"MONGODB_URL": "mongodb://mongo1:27017/?replicaSet=rs0"})
    assert config.store.kind == "mongodb"
    assert config.store.url == "mongodb://mongo1:27017/?replicaSet=rs0"
    assert config.server.host == "0.0.0.0" and config.server.port == 8080
    assert "demo" in config.bots


def test_dockerfile_runs_the_farm_as_a_non_root_user() -> None:
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("RUN pip install") and " ." in line for line in instructions)
    entry = next(line for line in instructions if line.startswith("ENTRYPOINT"))
    cmd = [line for line in instructions if line.startswith("CMD")][-1]  # the last one; HEALTHCHECK has its own
    assert '"switchboard"' in entry
    assert '"run"' in cmd and '"--host", "0.0.0.0"' in cmd


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], check=False, capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_cli_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    result = subprocess.run(
        [*cli, "-f", str(DOCKER / "compose.yml"), "config", "--quiet"], check=False, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
