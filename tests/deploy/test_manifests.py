"""The Kubernetes manifests in examples/deploy/ parse and agree with the HAProxy configuration beside them:
one `server` per StatefulSet pod, named as the pod (the RLM_REPLICA_ID its handles carry), at the pod's
DNS name under the headless Service, on the port the replica serves; the proxy runs that very file from
the ConfigMap kustomize makes of it, and the real HAProxy accepts it with the Kubernetes environment.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from rlm_mcp.config import Settings
from tests.deploy.team import DEPLOY, HAPROXY_CFG, configured_replicas, haproxy_binary


def documents(name: str) -> dict[str, dict[str, Any]]:
    """The manifests in one file, by "Kind/name"."""
    with (DEPLOY / name).open() as stream:
        return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in yaml.safe_load_all(stream) if doc}


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    found: dict[str, dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        found |= documents(resource)
    found["Kustomization"] = kustomization
    return found


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def env_of(workload: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(workload)["env"]}


def port_named(workload: dict[str, Any], name: str) -> int:
    return next(port["containerPort"] for port in container(workload)["ports"] if port["name"] == name)


def test_one_server_per_replica_pod_named_as_the_pod(manifests) -> None:
    replicas = manifests["StatefulSet/rlm"]
    servers = list(configured_replicas())
    assert servers == [f"rlm-{index}" for index in range(replicas["spec"]["replicas"])]
    assert env_of(replicas)["RLM_REPLICA_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # an httpGet probe would meet the 401 of a request without a token: never ready, no DNS name
    assert container(replicas)["readinessProbe"]["tcpSocket"] == {"port": "mcp"}
    for name in servers:  # a pod's name is a valid RLM_REPLICA_ID
        assert Settings(replica_id=name).replica_id == name


def test_servers_are_the_pods_dns_names_on_the_replicas_port(manifests) -> None:
    replicas, headless = manifests["StatefulSet/rlm"], manifests["Service/rlm"]
    assert replicas["spec"]["serviceName"] == "rlm" and headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= replicas["spec"]["template"]["metadata"]["labels"].items()
    port = port_named(replicas, "mcp")
    args = container(replicas)["args"]
    assert args[args.index("--port") + 1] == str(port) and args[args.index("--host") + 1] == "0.0.0.0"
    assert headless["spec"]["ports"][0]["port"] == port
    proxy_env = env_of(manifests["Deployment/rlm-proxy"])
    assert proxy_env["NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for name, variable in configured_replicas().items():
        assert proxy_env[variable] == f"{name}.rlm.$(NAMESPACE).svc.cluster.local:{port}"


def test_the_proxy_runs_the_checked_in_config_from_a_configmap(manifests) -> None:
    proxy = manifests["Deployment/rlm-proxy"]
    (generated,) = manifests["Kustomization"]["configMapGenerator"]
    assert generated["files"] == [HAPROXY_CFG.name]
    (volume,) = proxy["spec"]["template"]["spec"]["volumes"]
    assert volume["configMap"]["name"] == generated["name"]
    (mount,) = container(proxy)["volumeMounts"]
    assert mount["name"] == volume["name"]
    args = container(proxy)["args"]
    assert args[args.index("-f") + 1] == f"{mount['mountPath']}/{HAPROXY_CFG.name}"
    bind = env_of(proxy)["RLM_PROXY_BIND"]
    assert bind == f":{port_named(proxy, 'http')}"
    service = manifests["Service/rlm-proxy"]
    assert service["spec"]["selector"].items() <= proxy["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_haproxy_accepts_the_config_with_the_kubernetes_environment(manifests) -> None:
    """The real binary checks the file with proxy.yaml's variables (pod names that do not resolve here:
    the servers start down and are resolved while running, as under Kubernetes)."""
    environment = {name: str(value).replace("$(NAMESPACE)", "rlm-team")
                   for name, value in env_of(manifests["Deployment/rlm-proxy"]).items() if isinstance(value, str)}
    checked = subprocess.run([haproxy_binary(), "-c", "-f", str(HAPROXY_CFG)], env=environment,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout + checked.stderr
    warnings = [line for line in (checked.stdout + checked.stderr).splitlines() if "WARNING" in line]
    assert all(re.search(r"could not resolve address 'rlm-\d\.rlm\.rlm-team\.svc\.cluster\.local'", line)
               for line in warnings), warnings
