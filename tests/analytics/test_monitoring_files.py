"""The monitoring shipped in docker/: Prometheus scrapes both farm replicas, Grafana is provisioned with the
service dashboard, and every series the dashboard queries is one the farm's /metrics serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

import core.analytics.prometheus  # noqa: F401 - registers the store-backed collector
from core import metrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8")))


def served_series() -> set[str]:
    return {sample.name for family in metrics.REGISTRY.collect() for sample in family.samples} | {
        f"{family.name}{suffix}" for family in metrics.REGISTRY.collect()
        for suffix in ("", "_total", "_bucket", "_sum", "_count")}


def test_prometheus_scrapes_every_farm_replica() -> None:
    services = compose()["services"]
    farms = sorted(name for name in services if name.startswith("farm"))
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert sorted(job["static_configs"][0]["targets"]) == [f"{farm}:8080" for farm in farms]
    mounts = [v.split(":")[0] for v in services["prometheus"]["volumes"]]
    assert "./prometheus.yml" in mounts


def test_grafana_is_provisioned_with_the_dashboard_and_the_prometheus_source() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    for source in mounts:
        if source.startswith("./"):
            assert (DOCKER / source).exists(), source
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/switchboard.yml").read_text())
    assert mounts["./grafana/switchboard-dashboard.json"].startswith(provider["providers"][0]["options"]["path"])
    source = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in grafana["depends_on"]


def test_every_series_the_dashboard_queries_is_served_by_the_farm() -> None:
    dashboard = json.loads((DOCKER / "grafana/switchboard-dashboard.json").read_text(encoding="utf-8"))
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b(switchboard_[a-z_]+)\b", target["expr"])}
    assert {"switchboard_cases_total", "switchboard_case_handoffs_total", "switchboard_queue_waiting",
            "switchboard_queue_oldest_wait_seconds", "switchboard_agents_online", "switchboard_cases_open",
            "switchboard_csat_responses_total", "switchboard_csat_score_sum_total", "switchboard_fallbacks_total",
            "switchboard_case_dead_letters_total"} <= queried
    assert queried - served_series() == set()
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
