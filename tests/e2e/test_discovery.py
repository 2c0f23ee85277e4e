"""NAT gateways and subnets described from the EC2 API (issue 15 item 1), against LocalStack's EC2
on loopback (moto-based): a VPC, subnets in two AZs and NAT gateways are created there with boto3,
then natmeter describes them itself (its own SigV4 Query client, crates/ec2).

The contract checked:
- `natmeter discover --vpc-id V` / `--nat-gateway-id G` prints {"nat_gateways": [...],
  "subnets": [...], "passed_over": [...]} in the shapes NATMETER_NAT_GATEWAYS and NATMETER_SUBNETS
  take: each gateway's ENI and private IPs as EC2 lists them, its AZ id from its subnet, private
  gateways marked;
- the function with NATMETER_VPC_IDS and no NATMETER_NAT_GATEWAYS describes the topology at cold
  start and meters the described gateway; a gateway created after start-up is metered from its
  first batch (a batch from an unknown ENI prompts a re-describe, at most once per
  NATMETER_REDISCOVER_SECONDS, and an ENI found not to be NAT never prompts another); its NatBytes
  land under its own NatGatewayId;
- EC2 unreachable at cold start stops start-up (exit status 3, "discovery failed", nothing
  metered); EC2 failing on a re-describe fails that invocation with natmeter.DiscoveryUnavailable
  naming the ENI (Lambda retries it) and the retry, once EC2 answers, counts the batch.

Ground truth is what boto3's DescribeNatGateways/DescribeSubnets answer and the records the test
writes, never natmeter's own output.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import boto3
import pytest

import flowgen
from cwread import MetricsReader

PRICE = 0.045


@pytest.fixture
def ec2(localstack):
    return boto3.client("ec2", endpoint_url=localstack, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


class Vpc:
    """A VPC of LocalStack's EC2 with subnets in two AZs; gateways added on demand."""

    def __init__(self, ec2):
        self.ec2 = ec2
        self.id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(VpcId=self.id, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]
            for cidr, az in (("10.0.0.0/19", "us-east-1a"), ("10.0.32.0/19", "us-east-1b"))
        ]

    def nat_gateway(self, subnet: int = 0, private: bool = False) -> dict:
        kw = {"SubnetId": self.subnets[subnet]["SubnetId"]}
        if private:
            kw["ConnectivityType"] = "private"
        else:
            kw["AllocationId"] = self.ec2.allocate_address(Domain="vpc")["AllocationId"]
        gw = self.ec2.create_nat_gateway(**kw)["NatGateway"]
        return self.ec2.describe_nat_gateways(NatGatewayIds=[gw["NatGatewayId"]])["NatGateways"][0]

    def expected_subnets(self) -> list[dict]:
        return sorted(({"cidr": s["CidrBlock"], "az_id": s["AvailabilityZoneId"]} for s in self.subnets),
                      key=lambda s: s["cidr"])

    def az_of_subnet(self, subnet_id: str) -> str:
        return next(s["AvailabilityZoneId"] for s in self.subnets if s["SubnetId"] == subnet_id)

    def cleanup(self):
        try:
            for g in self.ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [self.id]}])["NatGateways"]:
                self.ec2.delete_nat_gateway(NatGatewayId=g["NatGatewayId"])
        except Exception:  # noqa: BLE001 - LocalStack may be gone at the end of a failed session
            pass


@pytest.fixture
def vpc(ec2):
    v = Vpc(ec2)
    try:
        yield v
    finally:
        v.cleanup()


def expected_gateway(vpc: Vpc, g: dict) -> dict:
    """What NATMETER_NAT_GATEWAYS says for a zonal gateway EC2 described."""
    out = {"id": g["NatGatewayId"], "eni": g["NatGatewayAddresses"][0]["NetworkInterfaceId"],
           "private_ips": [a["PrivateIp"] for a in g["NatGatewayAddresses"]],
           "az_id": vpc.az_of_subnet(g["SubnetId"])}
    if g.get("ConnectivityType") == "private":
        out["connectivity_type"] = "private"
    return out


def discover_cli(natmeter_bin, localstack: str, *args: str) -> dict:
    env = dict(os.environ, AWS_ENDPOINT_URL_EC2=localstack, AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([str(natmeter_bin), "discover", *args], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_describes_what_ec2_lists(natmeter_bin, localstack, vpc):
    public = vpc.nat_gateway(0)
    private = vpc.nat_gateway(1, private=True)
    got = discover_cli(natmeter_bin, localstack, "--vpc-id", vpc.id)
    assert sorted(got["nat_gateways"], key=lambda g: g["id"]) == sorted(
        [expected_gateway(vpc, public), expected_gateway(vpc, private)], key=lambda g: g["id"])
    assert sorted(got["subnets"], key=lambda s: s["cidr"]) == vpc.expected_subnets()
    assert got["passed_over"] == []
    # By gateway id: that gateway only, and the subnets of its VPC.
    got = discover_cli(natmeter_bin, localstack, "--nat-gateway-id", public["NatGatewayId"])
    assert got["nat_gateways"] == [expected_gateway(vpc, public)]
    assert sorted(got["subnets"], key=lambda s: s["cidr"]) == vpc.expected_subnets()


def batch(g: dict, n: int, bytes_each: int, id_base: int) -> bytes:
    """n outbound records (rule A) on gateway g's ENI, its subscription event."""
    eni = g["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    nat_ip = g["NatGatewayAddresses"][0]["PrivateIp"]
    recs = [flowgen.record(interface_id=eni, dstaddr=nat_ip, srcport=20000 + i, bytes=bytes_each)
            for i in range(n)]
    return flowgen.event(recs, log_stream=f"{eni}-all", id_base=id_base)


def other_eni_batch(eni: str, id_base: int) -> bytes:
    return flowgen.event([flowgen.record(interface_id=eni, srcport=31000)], log_stream=f"{eni}-all",
                         id_base=id_base)


def describes(proxy, mark: int) -> int:
    return sum(1 for r in proxy.since(mark) if b"Action=DescribeNatGateways" in r.body)


def discovery_env(namespace: str, vpc: Vpc, ec2_url: str, **extra) -> dict:
    e = flowgen.env(namespace, NATMETER_VPC_IDS=vpc.id, AWS_ENDPOINT_URL_EC2=ec2_url,
                    NATMETER_PRICE_PER_GB=str(PRICE), **extra)
    del e["NATMETER_NAT_GATEWAYS"]
    return e


def test_function_meters_described_gateways_and_one_created_later(vpc, localstack, start_bootstrap, fault_proxy,
                                                                  cw, namespace):
    first = vpc.nat_gateway(0)
    proxy = fault_proxy(localstack)  # passes everything; counts the describes
    b = start_bootstrap(discovery_env(namespace, vpc, proxy.url, NATMETER_REDISCOVER_SECONDS="0"))
    assert describes(proxy, 0) == 1, "one describe at cold start"

    r1 = json.loads(b.invoke(batch(first, 3, 1000, 0))[1])
    assert (r1["batch"], r1["records_counted"], r1["bytes"]) == ("data", 3, 3000), r1

    # A gateway created after start-up: its first batch prompts a re-describe and is counted.
    later = vpc.nat_gateway(1)
    mark = proxy.mark()
    r2 = json.loads(b.invoke(batch(later, 2, 5000, 100))[1])
    assert (r2["batch"], r2["records_counted"], r2["bytes"]) == ("data", 2, 10000), r2
    assert describes(proxy, mark) == 1
    mark = proxy.mark()
    json.loads(b.invoke(batch(later, 1, 7000, 200))[1])
    assert describes(proxy, mark) == 0, "a known NAT ENI prompts no describe"

    # An ENI that is not a NAT ENI: one describe, then never again.
    other = "eni-0e2e00000000000c3"
    mark = proxy.mark()
    for i in range(3):
        r = json.loads(b.invoke(other_eni_batch(other, 300 + i))[1])
        assert r["batch"] == "skipped_not_nat", r
    assert describes(proxy, mark) == 1, "an ENI found not to be NAT prompts one describe only"

    # The metrics, under each gateway's own id.
    start = flowgen.minute_ago(15)
    m = MetricsReader(cw, namespace, start, int(time.time()) + 120)
    deadline = time.time() + 20
    while True:
        got = {g: m.value("NatBytes", {"NatGatewayId": g}) for g in (first["NatGatewayId"], later["NatGatewayId"])}
        if got == {first["NatGatewayId"]: 3000, later["NatGatewayId"]: 17000} or time.time() > deadline:
            break
        time.sleep(0.5)
    assert got == {first["NatGatewayId"]: 3000, later["NatGatewayId"]: 17000}


def test_rediscover_interval_limits_describes(vpc, localstack, start_bootstrap, fault_proxy, namespace):
    vpc.nat_gateway(0)
    proxy = fault_proxy(localstack)
    b = start_bootstrap(discovery_env(namespace, vpc, proxy.url, NATMETER_REDISCOVER_SECONDS="3600"))
    mark = proxy.mark()
    for i in range(3):  # three different unknown ENIs within the hour after the cold start
        r = json.loads(b.invoke(other_eni_batch(f"eni-0e2e0000000000d{i:02x}", i))[1])
        assert r["batch"] == "skipped_not_nat", r
    assert describes(proxy, mark) == 0, "the cold start's describe is less than an hour old"


def test_ec2_unreachable_at_cold_start_stops_start_up(vpc, start_bootstrap, closed_port, namespace):
    env = discovery_env(namespace, vpc, f"http://127.0.0.1:{closed_port}")
    b = start_bootstrap(env, wait_ready=False)
    deadline = time.time() + 60
    while b.alive() and time.time() < deadline:
        time.sleep(0.2)
    assert not b.alive(), "the function must not start without its topology"
    assert b.proc.returncode == 3
    err = b.stderr_text()
    assert "discovery failed" in err and "DescribeNatGateways" in err, err[-2000:]


def test_ec2_failing_on_a_re_describe_fails_the_invocation_and_the_retry_counts(vpc, localstack, start_bootstrap,
                                                                               fault_proxy, namespace):
    vpc.nat_gateway(0)
    proxy = fault_proxy(localstack)
    b = start_bootstrap(discovery_env(namespace, vpc, proxy.url, NATMETER_REDISCOVER_SECONDS="0"))
    later = vpc.nat_gateway(1)
    proxy.always("reset")
    inv = b.invoke_detail(batch(later, 2, 4000, 0), timeout_s=60)
    assert inv.kind == "error", inv.text()[:500]
    err = json.loads(inv.body)
    assert err["errorType"] == "natmeter.DiscoveryUnavailable", err
    assert later["NatGatewayAddresses"][0]["NetworkInterfaceId"] in err["errorMessage"], err
    assert b.alive()
    # The retry (no backoff with NATMETER_REDISCOVER_SECONDS=0; the 30 s backoff otherwise is a
    # unit test, crates/lambda/tests/discovery.rs) describes again, and counts the batch.
    proxy.healthy()
    r = json.loads(b.invoke(batch(later, 2, 4000, 0))[1])
    assert (r["batch"], r["records_counted"], r["bytes"]) == ("data", 2, 8000), r
