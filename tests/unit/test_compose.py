"""compose.yaml stays consistent with the code it runs (no Docker engine needed)."""

import importlib.util
import re

import yaml

from tests.conftest import REPO


def test_compose_services_and_what_they_run():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "migrate", "worker"}
    assert "pgjobs migrate" in services["migrate"]["command"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    worker = services["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The worker's App reference resolves to a real module and attribute here.
    match = re.search(r"pgjobs worker (\w+):(\w+) --queues ([\w-]+)", worker["command"])
    assert match is not None
    module, attribute, queue = match.groups()
    spec = importlib.util.spec_from_file_location(module, REPO / "examples" / f"{module}.py")
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    app = getattr(loaded, attribute)
    assert {task.defaults.queue for task in app.tasks.values()} == {queue}


def test_compose_dashboard_serves_the_same_app_with_tokens():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    dashboard = compose["services"]["dashboard"]
    assert dashboard["profiles"] == ["dashboard"]
    assert "pgjobs dashboard quickstart:app --bind 0.0.0.0:8080" in dashboard["command"]
    assert "PGJOBS_DASHBOARD_TOKENS" in dashboard["environment"]
    assert dashboard["ports"] == ["127.0.0.1:8080:8080"]


def test_compose_worker_healthcheck_probes_the_port_the_worker_serves():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    worker = compose["services"]["worker"]
    match = re.search(r"--health-port (\d+)", worker["command"])
    assert match is not None
    port = match.group(1)
    check = worker["healthcheck"]["test"]
    # Exec form: no shell in between, and python is all the image is sure to have.
    assert check[:3] == ["CMD", "python", "-c"]
    assert re.findall(r"http://127\.0\.0\.1:(\d+)/(\w+)", check[3]) == [(port, "readyz")]
    assert "timeout=" in check[3]
    # The probe reaches the worker inside its container: it must not serve
    # only some other address.
    assert "--health-host" not in worker["command"]
