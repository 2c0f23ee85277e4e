"""Hand-made EKS audit events (audit.k8s.io/v1, shaped as EKS logs them) and the CloudWatch Logs
subscription events that carry them (log group /aws/eks/<cluster>/cluster, stream
kube-apiserver-audit-<32 hex>), plus what the function's inventory table should hold for them.

    pod = PodSpec()                                    # shop/web-7d4b9c8f6d-x2k9p of Deployment web
    evs = [pod_create(t0, pod), pod_status(t0 + 2_351_234, pod), node_status(t0 + 900_000, NODE)]
    event = audit_event(evs)                           # Lambda event bytes
    want = expected_items(evs)                         # {(pk, sk): expires_at} of the relevant ones

Times are integer microseconds since the epoch (stageTimestamp has microseconds).
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional, Union

import flowgen
from lambda_events import encode_payload

CLUSTER = "natmeter-e2e"
LOG_GROUP = f"/aws/eks/{CLUSTER}/cluster"
ACCOUNT = "123456789012"
K8S = "v1.31.2-eks-7f9249a"
RETENTION_HOURS = 24  # NATMETER_INVENTORY_RETENTION_HOURS' default


@dataclass(frozen=True)
class NodeSpec:
    name: str = "ip-10-0-1-5.ec2.internal"
    ip: str = "10.0.1.5"


NODE = NodeSpec()


@dataclass(frozen=True)
class PodSpec:
    """A Deployment's pod: ReplicaSet <deployment>-<template_hash>, pod <rs>-<suffix>."""
    namespace: str = "shop"
    deployment: str = "web"
    template_hash: str = "7d4b9c8f6d"
    suffix: str = "x2k9p"
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    ip: str = flowgen.POD_IP
    node: NodeSpec = NODE

    @property
    def replicaset(self) -> str:
        return f"{self.deployment}-{self.template_hash}"

    @property
    def name(self) -> str:
        return f"{self.replicaset}-{self.suffix}"

    @property
    def workload(self) -> str:  # the Workload dimension value
        return f"Deployment/{self.deployment}"


def us(seconds: float) -> int:
    return int(round(seconds * 1_000_000))


def iso(t_us: int) -> str:
    """2025-12-01T00:03:12.351234Z"""
    s, micro = divmod(t_us, 1_000_000)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{micro:06d}Z"


def _event(t_us: int, verb: str, username: str, object_ref: dict, code: int, level: str,
           request_uri: str, user_agent: str, groups: list[str], source_ip: str, audit_id: Optional[str] = None,
           request_object: Optional[dict] = None, response_object: Optional[dict] = None,
           stage: str = "ResponseComplete") -> dict:
    ev = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
        "auditID": audit_id or str(uuid.uuid4()), "stage": stage, "requestURI": request_uri, "verb": verb,
        "user": {"username": username, "groups": groups},
        "sourceIPs": [source_ip], "userAgent": user_agent,
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
    }
    if request_object is not None:
        ev["requestObject"] = request_object
    if response_object is not None:
        ev["responseObject"] = response_object
    ev["requestReceivedTimestamp"] = iso(t_us - 2_113)
    ev["stageTimestamp"] = iso(t_us)
    ev["annotations"] = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    return ev


def _kubelet(node: NodeSpec) -> dict:
    return dict(username=f"system:node:{node.name}", groups=["system:nodes", "system:authenticated"],
                user_agent=f"kubelet/{K8S} (linux/amd64) kubernetes/7f9249a", source_ip=node.ip)


def _pod_object(pod: PodSpec, t_us: int, node_name: Optional[str], host_network: bool, phase: str = "Pending") -> dict:
    spec = {"containers": [{"name": pod.deployment, "image": f"public.ecr.aws/e2e/{pod.deployment}:1.0",
                            "resources": {}}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "schedulerName": "default-scheduler", "hostNetwork": host_network}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": pod.name, "generateName": f"{pod.replicaset}-", "namespace": pod.namespace, "uid": pod.uid,
            "resourceVersion": "4811727", "creationTimestamp": iso(t_us)[:19] + "Z",
            "labels": {"app": pod.deployment, "pod-template-hash": pod.template_hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": pod.replicaset,
                                 "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, pod.replicaset)),
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
        "status": {"phase": phase, "qosClass": "BestEffort"},
    }


def pod_create(t_us: int, pod: PodSpec, node_name: Optional[str] = None, host_network: bool = False,
               audit_id: Optional[str] = None) -> dict:
    """The ReplicaSet controller's create (level RequestResponse; generateName, so objectRef.name is
    ""). A controller's create has no spec.nodeName yet (the scheduler binds the pod later): the node
    comes from the kubelet's status patch, unless node_name is given."""
    return _event(
        t_us, "create", "system:serviceaccount:kube-system:replicaset-controller",
        {"resource": "pods", "namespace": pod.namespace, "name": "", "apiVersion": "v1"}, 201, "RequestResponse",
        f"/api/v1/namespaces/{pod.namespace}/pods",
        f"kube-controller-manager/{K8S} (linux/amd64) kubernetes/7f9249a/system:serviceaccount:kube-system:replicaset-controller",
        ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"], "10.0.0.50",
        audit_id=audit_id,
        request_object={"kind": "Pod", "apiVersion": "v1",
                        "metadata": {"generateName": f"{pod.replicaset}-", "namespace": pod.namespace,
                                     "labels": {"app": pod.deployment, "pod-template-hash": pod.template_hash}}},
        response_object=_pod_object(pod, t_us, node_name, host_network))


def pod_status(t_us: int, pod: PodSpec, phase: str = "Running", with_ips: bool = True,
               audit_id: Optional[str] = None) -> dict:
    """The kubelet's patch of pods/status (level Request: the patch is the requestObject)."""
    status = {
        "$setElementOrder/conditions": [{"type": "PodReadyToStartContainers"}, {"type": "Initialized"},
                                        {"type": "Ready"}, {"type": "ContainersReady"}, {"type": "PodScheduled"}],
        "conditions": [{"lastTransitionTime": iso(t_us)[:19] + "Z", "status": "True", "type": "Ready"}],
        "phase": phase,
    }
    if with_ips:
        status.update({"hostIP": pod.node.ip, "hostIPs": [{"ip": pod.node.ip}],
                       "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": iso(t_us - 1_500_000)[:19] + "Z"})
    k = _kubelet(pod.node)
    return _event(
        t_us, "patch", k["username"],
        {"resource": "pods", "namespace": pod.namespace, "name": pod.name, "apiVersion": "v1",
         "subresource": "status"}, 200, "Request",
        f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status", k["user_agent"], k["groups"], k["source_ip"],
        audit_id=audit_id, request_object={"metadata": {"uid": pod.uid}, "status": status})


def pod_delete(t_us: int, pod: PodSpec, final: bool, audit_id: Optional[str] = None) -> dict:
    """The graceful delete (the ReplicaSet controller, no grace period given) or the kubelet's final
    one (gracePeriodSeconds 0, preconditions uid); both answer the Pod."""
    if final:
        k = _kubelet(pod.node)
        who = (k["username"], k["user_agent"], k["groups"], k["source_ip"])
        req = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
               "preconditions": {"uid": pod.uid}}
    else:
        who = ("system:serviceaccount:kube-system:replicaset-controller",
               f"kube-controller-manager/{K8S} (linux/amd64) kubernetes/7f9249a/system:serviceaccount:kube-system:replicaset-controller",
               ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"], "10.0.0.50")
        req = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    obj = _pod_object(pod, t_us, pod.node.name, False, phase="Running")
    obj["metadata"]["deletionTimestamp"] = iso(t_us + (0 if final else 30_000_000))[:19] + "Z"
    obj["metadata"]["deletionGracePeriodSeconds"] = 0 if final else 30
    return _event(
        t_us, "delete", who[0],
        {"resource": "pods", "namespace": pod.namespace, "name": pod.name, "apiVersion": "v1"}, 200,
        "RequestResponse", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}", who[1], who[2], who[3],
        audit_id=audit_id, request_object=req, response_object=obj)


def node_status(t_us: int, node: NodeSpec = NODE, audit_id: Optional[str] = None) -> dict:
    """The kubelet's patch of nodes/status carrying status.addresses (InternalIP, InternalDNS, Hostname)."""
    k = _kubelet(node)
    addresses = [{"type": "InternalIP", "address": node.ip}, {"type": "InternalDNS", "address": node.name},
                 {"type": "Hostname", "address": node.name}]
    return _event(
        t_us, "patch", k["username"],
        {"resource": "nodes", "name": node.name, "apiVersion": "v1", "subresource": "status"}, 200, "Request",
        f"/api/v1/nodes/{node.name}/status", k["user_agent"], k["groups"], k["source_ip"], audit_id=audit_id,
        request_object={"status": {"$setElementOrder/addresses": [{"type": a["type"]} for a in addresses],
                                   "addresses": addresses}})


def pod_get(t_us: int, pod: PodSpec) -> dict:
    """Irrelevant to the inventory: a kubelet's get of the pod (level Metadata)."""
    k = _kubelet(pod.node)
    return _event(t_us, "get", k["username"],
                  {"resource": "pods", "namespace": pod.namespace, "name": pod.name, "apiVersion": "v1"}, 200,
                  "Metadata", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}", k["user_agent"], k["groups"],
                  k["source_ip"])


def configmap_update(t_us: int, namespace: str = "kube-system", name: str = "aws-auth") -> dict:
    """Irrelevant to the inventory: another resource."""
    return _event(t_us, "update", "kubernetes-admin",
                  {"resource": "configmaps", "namespace": namespace, "name": name, "apiVersion": "v1"}, 200,
                  "RequestResponse", f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                  "kubectl/v1.31.0 (linux/amd64) kubernetes/9edcffc", ["system:masters", "system:authenticated"],
                  "203.0.113.7", request_object={"kind": "ConfigMap", "apiVersion": "v1", "data": {}},
                  response_object={"kind": "ConfigMap", "apiVersion": "v1", "data": {}})


# ---------------------------------------------------------------- what the table should hold ----

def is_relevant(ev: dict) -> bool:
    """The events the function stores (the contract): ResponseComplete, 2xx, and pod create/delete,
    a pods/status or nodes/status patch (or update)."""
    if ev.get("stage", "ResponseComplete") != "ResponseComplete":
        return False
    code = (ev.get("responseStatus") or {}).get("code")
    if code is not None and not 200 <= code < 300:
        return False
    r = ev.get("objectRef") or {}
    combo = (r.get("resource"), r.get("subresource") or "", ev.get("verb"))
    return combo in {("pods", "status", "patch"), ("pods", "status", "update"), ("pods", "", "create"),
                     ("pods", "", "delete"), ("nodes", "status", "patch"), ("nodes", "status", "update")}


def stage_seconds(ev: dict) -> int:
    s = ev["stageTimestamp"]
    return int(datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def expected_items(events: list, retention_hours: int = RETENTION_HOURS) -> dict[tuple[str, str], int]:
    """{(pk, sk): expires_at} of the items the function stores for these events: pk "h#<hour>" of
    the stage time, sk the auditID, expires_at stage seconds + retention."""
    out = {}
    for ev in events:
        if isinstance(ev, dict) and is_relevant(ev):
            s = stage_seconds(ev)
            out[(f"h#{s // 3600}", ev["auditID"])] = s + retention_hours * 3600
    return out


# ---------------------------------------------------------------- subscription events -------------

def log_stream(seed: str = "e2e") -> str:
    return "kube-apiserver-audit-" + uuid.uuid5(uuid.NAMESPACE_DNS, seed).hex


Message = Union[dict, str]


def audit_payload(events: list[Message], stream: Optional[str] = None, id_base: int = 0,
                  log_group: str = LOG_GROUP) -> dict:
    """The decoded subscription payload: one log event per audit event (its JSON, compact, as EKS
    writes it) or raw string (a message that is not an audit event), timestamp the stage time."""
    log_events = []
    for i, ev in enumerate(events):
        if isinstance(ev, dict):
            msg = json.dumps(ev, separators=(",", ":"))
            ts = stage_seconds(ev) * 1000 + int(ev["stageTimestamp"][20:23])
        else:
            msg = ev
            ts = log_events[-1]["timestamp"] if log_events else flowgen.minute_ago() * 1000
        log_events.append({"id": f"{38000000000000000000000000000000000000000000000000000000 + id_base + i:056d}",
                           "timestamp": ts, "message": msg})
    return {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": log_group,
            "logStream": stream or log_stream(), "subscriptionFilters": ["natmeter-audit"],
            "logEvents": log_events}


def audit_event(events: list[Message], **kw) -> bytes:
    """Lambda event bytes ({"awslogs":{"data": base64(gzip(json))}}) of audit_payload(events, **kw)."""
    return encode_payload(audit_payload(events, **kw))


def reordered_copy(payload: dict, id_base: int) -> dict:
    """The same messages in reverse order with other log-event ids (another delivery of the same
    audit events in a different batch: not an exact repeat of the batch)."""
    p = copy.deepcopy(payload)
    p["logEvents"] = [dict(e, id=f"{39000000000000000000000000000000000000000000000000000000 + id_base + i:056d}")
                      for i, e in enumerate(reversed(p["logEvents"]))]
    return p
