"""Cross-AZ pricing (issue 15, item 2): with `subnets` the module tells the
function the VPC's subnets and their AZ IDs (NATMETER_SUBNETS, JSON) and the
dashboard shows the cross-AZ surcharge (NatCrossAzBytes, NatCrossAzCost by []
and [NatGatewayId]); without it, none of that exists.

The two metrics are fixed by the contract below. The test that compares the
dashboard with `natmeter metrics --json` says "xfail" while the binary declares
neither metric, and becomes an ordinary check as soon as it declares one.
"""

from __future__ import annotations

import copy
import json

import pytest

import cwsyntax as cw
import test_tf_contract as contract
import test_tf_dashboard as dash
import tfeval
from tfsupport import INFRA, INVENTORY_SCENARIOS, MODULE, SCENARIOS, evaluator, module_config

CONTRACT_METRICS: dict[str, list[frozenset[str]]] = {
    "NatCrossAzBytes": [frozenset(), frozenset({"NatGatewayId"})],
    "NatCrossAzCost": [frozenset(), frozenset({"NatGatewayId"})],
}

# The fake world's gateways are in use1-az1, use1-az2, ... (tfsupport.fake_world).
THREE_AZS = [
    {"cidr": "10.0.0.0/20", "az_id": "use1-az1"},
    {"cidr": "10.0.16.0/20", "az_id": "use1-az2"},
    {"cidr": "10.0.32.0/19", "az_id": "use1-az3"},
]
EIGHT = [{"cidr": f"10.{i}.0.0/16", "az_id": f"use1-az{i % 6 + 1}"} for i in range(8)]

SUBNET_SCENARIOS: dict[str, dict] = {
    "subnets_vpc_flow_log_3_nats": dict(SCENARIOS["vpc_flow_log_3_nats"], subnets=THREE_AZS),
    "subnets_default_format_20_nats": dict(SCENARIOS["default_format_20_nats"], subnets=EIGHT),
    "subnets_inventory_dedicated_kms_1_nat": dict(
        INVENTORY_SCENARIOS["inventory_dedicated_kms_1_nat"],
        subnets=[{"cidr": "10.0.0.0/16", "az_id": "euw1-az1"}, {"cidr": "2a05:d018:1200::/56", "az_id": "euw1-az2"}],
    ),
}

CROSS_AZ_TITLES = ("Cross-AZ surcharge by NAT gateway", "NAT processing cost and the cross-AZ surcharge")


@pytest.fixture(params=sorted(SUBNET_SCENARIOS), scope="module")
def with_subnets(request) -> tuple[str, tfeval.Evaluator]:
    return request.param, evaluator(SUBNET_SCENARIOS[request.param])


def widgets(ev) -> list[dict]:
    return json.loads(ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"])["widgets"]


def cross_az_widgets(ev) -> list[dict]:
    return [w for w in widgets(ev) if w["properties"].get("title", "").startswith(CROSS_AZ_TITLES)]


def _widget(ev, title_start: str) -> dict:
    (w,) = [w for w in widgets(ev) if w["properties"].get("title", "").startswith(title_start)]
    return w


def _key(w: dict) -> tuple[str, str]:
    return w["type"], w["properties"].get("title", w["properties"].get("markdown", "")[:40])


# ---------------------------------------------------------------------------
# The environment
# ---------------------------------------------------------------------------


def test_without_subnets_nothing_of_cross_az_exists(scenario):
    name, ev = scenario
    assert ev.variables["subnets"] == []
    assert "NATMETER_SUBNETS" not in ev.local("function_environment"), name
    body = ev.instances("aws_cloudwatch_dashboard", "this")[0]["dashboard_body"]
    assert "NatCrossAz" not in body and "Cross-AZ" not in body, f"{name}: cross-AZ widgets without subnets"
    assert ev.local("xaz_dy") == 0 and cross_az_widgets(ev) == []


def test_the_function_is_told_the_subnets_as_given(with_subnets):
    name, ev = with_subnets
    env = ev.local("function_environment")
    assert json.loads(env["NATMETER_SUBNETS"]) == ev.variables["subnets"]
    assert env["NATMETER_SUBNETS"] == tfeval.jsonencode(ev.variables["subnets"]), "compact JSON, as jsonencode writes it"
    gateways = json.loads(env["NATMETER_NAT_GATEWAYS"])
    assert [g["az_id"] for g in gateways] == [f"use1-az{i + 1}" for i in range(len(gateways))], (
        "cross-AZ needs every gateway's AZ ID: from its subnet"
    )


def test_the_environment_still_fits_and_its_check_counts_the_subnets(with_subnets):
    contract.test_environment_fits_lambdas_4kb(with_subnets)
    block = module_config().resources[("aws_lambda_function", "this")]
    (size_check,) = [
        p for p in block.blocks_of("lifecycle")[0].blocks_of("precondition")
        if "4 KB" in tfeval.literal(p.attributes["error_message"])
    ]
    assert "subnets" in tfeval.literal(size_check.attributes["error_message"])
    name, ev = with_subnets
    assert tfeval.to_bool(ev.expr(size_check.attributes["condition"], {}))
    too_many = dict(SCENARIOS["default_format_20_nats"], subnets=[
        {"cidr": f"10.{i}.0.0/16", "az_id": f"use1-az{i % 6 + 1}"} for i in range(40)
    ])
    big = evaluator(too_many)
    assert not tfeval.to_bool(big.expr(size_check.attributes["condition"], {})), (
        "40 subnets beside 20 gateways do not fit in 4 KB: the precondition must stop the plan"
    )


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _rejections(value) -> list[str]:
    variables = dict(SCENARIOS["vpc_flow_log_3_nats"], subnets=value)
    ev = tfeval.Evaluator(module_config(), variables)
    return [
        tfeval.literal(v.attributes["error_message"])
        for v in module_config().variables["subnets"].blocks_of("validation")
        if not tfeval.to_bool(ev.expr(v.attributes["condition"], {}))
    ]


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "10.0.0.1", "10.0.0.256/24", "subnet-0123456789abcdef0", ""])
def test_a_bad_cidr_is_rejected_naming_the_variable(cidr):
    (message,) = _rejections(THREE_AZS[:1] + [{"cidr": cidr, "az_id": "use1-az2"}])
    assert "subnets" in message and "cidr" in message and "CIDR" in message


@pytest.mark.parametrize("az_id", ["us-east-1a", "USE1-AZ1", "use1-az", "use1az1", "az1", "use1-az1 ", ""])
def test_a_bad_az_id_is_rejected_naming_the_variable(az_id):
    (message,) = _rejections(THREE_AZS[:1] + [{"cidr": "10.0.16.0/20", "az_id": az_id}])
    assert "subnets" in message and "az_id" in message and "use1-az1" in message


def test_a_cidr_listed_twice_is_rejected():
    (message,) = _rejections(THREE_AZS + [{"cidr": "10.0.16.0/20", "az_id": "use1-az4"}])
    assert "subnets" in message and "twice" in message


@pytest.mark.parametrize("value", [[], THREE_AZS, EIGHT, [{"cidr": "fd00:1::/64", "az_id": "apne1-az4"}]])
def test_good_subnets_are_accepted(value):
    assert _rejections(value) == []


def test_subnets_default_to_none():
    assert tfeval.literal(module_config().variables["subnets"].attributes["default"]) == []


# ---------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------


def test_the_cross_az_widgets_appear_only_with_subnets(with_subnets):
    name, ev = with_subnets
    plain = evaluator({k: v for k, v in SUBNET_SCENARIOS[name].items() if k != "subnets"})
    assert cross_az_widgets(plain) == []
    shown = cross_az_widgets(ev)
    assert len(shown) == 2, [w["properties"]["title"] for w in shown]
    by_gw = _widget(ev, CROSS_AZ_TITLES[0])["properties"]
    uses = cw.widget_queries("by gateway", by_gw).metrics
    assert [(u.name, u.dimensions) for u in uses] == [
        ("NatCrossAzCost", {"NatGatewayId": id}) for id in ev.variables["nat_gateway_ids"]
    ], "one NatCrossAzCost line per gateway"
    assert all(u.namespace == ev.local("metric_namespace") for u in uses)
    assert by_gw["stacked"] is True and by_gw["stat"] == "Sum" and by_gw["period"] == 3600
    totals = _widget(ev, CROSS_AZ_TITLES[1])["properties"]
    uses = {(u.name, u.dimension_set) for u in cw.widget_queries("totals", totals).metrics}
    assert uses == {
        ("NatCost", frozenset()), ("NatCrossAzCost", frozenset()), ("NatCrossAzBytes", frozenset()), ("NatBytes", frozenset()),
    }
    (share,) = [e[-1] for e in totals["metrics"] if "expression" in e[-1]]
    assert share["expression"] == "100 * FILL(xazbytes, 0) / natbytes" and share["yAxis"] == "right"


def test_the_cross_az_row_sits_below_the_cost_by_gateway_and_moves_the_rest_down(with_subnets):
    name, ev = with_subnets
    plain = evaluator({k: v for k, v in SUBNET_SCENARIOS[name].items() if k != "subnets"})
    before = {_key(w): w for w in widgets(plain)}
    after = {_key(w): w for w in widgets(ev)}
    dy, y0 = ev.local("xaz_dy"), ev.local("xaz_y")
    assert dy == 6 and y0 == 13
    cost_by_gw = before[("metric", "NAT cost by NAT gateway (USD per hour)")]
    assert cost_by_gw["y"] + cost_by_gw["height"] == y0, "right below NAT cost by gateway"
    for w in cross_az_widgets(ev):
        assert w["y"] == y0 and w["height"] == dy
    for key, w in before.items():
        assert after[key]["y"] == (w["y"] + dy if w["y"] >= y0 else w["y"]), key
        assert {k: v for k, v in after[key].items() if k != "y"} == {k: v for k, v in w.items() if k != "y"}, key
    assert len(after) == len(before) + 2


@pytest.mark.parametrize(
    "check",
    [
        "test_body_is_json_within_limits",
        "test_widgets_are_well_formed",
        "test_widgets_do_not_overlap",
        "test_alarm_widget_shows_every_alarm",
        "test_insight_rule_widgets_name_the_module_rules",
        "test_coverage_widget_has_one_ratio_per_gateway",
        "test_every_metric_widget_keeps_its_own_period_in_utc",
        "test_metrics_insights_widgets_say_they_cover_two_weeks_at_most",
        "test_today_and_this_month_have_their_own_aligned_ranges",
        "test_widgets_stay_within_getmetricdata_datapoints",
        "test_header_states_utc_and_the_s3_dynamodb_share_is_labelled_honestly",
    ],
)
def test_the_dashboard_checks_hold_with_subnets(with_subnets, check):
    getattr(dash, check)(with_subnets)


def test_inventory_and_cross_az_together_do_not_overlap():
    variables = dict(INVENTORY_SCENARIOS["inventory_vpc_flow_log_3_nats"], subnets=THREE_AZS)
    dash.test_widgets_do_not_overlap(("inventory_and_subnets", evaluator(variables)))


# ---------------------------------------------------------------------------
# Against the binary
# ---------------------------------------------------------------------------


def model_declares_cross_az(model: dict) -> bool:
    return bool(set(CONTRACT_METRICS) & set(contract.model_metrics(model)))


def model_with_the_contract(model: dict) -> dict:
    out = copy.deepcopy(model)
    by_name = {m["name"]: m for m in out["metrics"]}
    for name, sets in CONTRACT_METRICS.items():
        entry = by_name.get(name)
        if entry is None:
            entry = {"name": name, "dimension_sets": [], "unit": "Bytes" if name.endswith("Bytes") else "None"}
            out["metrics"].append(entry)
        for s in sets:
            if sorted(s) not in [sorted(x) for x in entry["dimension_sets"]]:
                entry["dimension_sets"].append(sorted(s))
    return out


def test_the_function_reads_natmeter_subnets(metric_model):
    assert "NATMETER_SUBNETS" in metric_model["config_variables"]


def test_every_metric_read_with_subnets_is_one_the_function_emits(with_subnets, metric_model):
    if not model_declares_cross_az(metric_model):
        pytest.xfail(
            "`natmeter metrics --json` declares neither NatCrossAzBytes nor NatCrossAzCost yet: the binary "
            "predates the Rust side of issue 15 item 2 (rebuild it)"
        )
    contract.test_every_metric_read_is_one_the_function_emits(with_subnets, metric_model)


def test_the_binary_declares_the_cross_az_contract(metric_model):
    if not model_declares_cross_az(metric_model):
        pytest.xfail("the binary declares no NatCrossAz* metric yet (rebuild it)")
    metrics = contract.model_metrics(metric_model)
    missing = [f"{n} {sorted(s)}" for n, sets in CONTRACT_METRICS.items() for s in sets if s not in metrics.get(n, [])]
    assert not missing, f"not declared: {missing}"


def test_the_contract_checks_pass_once_the_binary_declares_the_contract(with_subnets, metric_model):
    model = model_with_the_contract(metric_model)
    contract.test_every_metric_read_is_one_the_function_emits(with_subnets, model)
    contract.test_environment_variables_are_ones_the_function_reads(with_subnets, model)


def test_the_contract_checks_see_a_missing_metric(with_subnets, metric_model):
    model = model_with_the_contract(metric_model)
    model["metrics"] = [m for m in model["metrics"] if m["name"] != "NatCrossAzCost"]
    with pytest.raises(AssertionError, match="NatCrossAzCost"):
        contract.test_every_metric_read_is_one_the_function_emits(with_subnets, model)
    model = model_with_the_contract(metric_model)
    model["config_variables"] = [v for v in model["config_variables"] if v != "NATMETER_SUBNETS"]
    with pytest.raises(AssertionError, match="NATMETER_SUBNETS"):
        contract.test_environment_variables_are_ones_the_function_reads(with_subnets, model)


@pytest.mark.parametrize("name", sorted(SUBNET_SCENARIOS))
def test_the_function_accepts_the_environment_with_subnets(name, metric_model, tmp_path, monkeypatch):
    """`natmeter emit` with every variable the module sets, NATMETER_SUBNETS
    included, passes the function's configuration checks."""
    monkeypatch.setitem(contract.SCENARIOS, name, SUBNET_SCENARIOS[name])
    contract.test_function_accepts_the_whole_environment(name, metric_model, tmp_path)


def test_the_function_rejects_malformed_subnets(metric_model, tmp_path, monkeypatch):
    """... and the check above would see a value the function refuses: the
    function does read NATMETER_SUBNETS (a configuration error exits 2)."""
    variables = copy.deepcopy(SUBNET_SCENARIOS["subnets_vpc_flow_log_3_nats"])
    real = contract.evaluator

    class Broken:
        def __init__(self, ev):
            self._ev = ev

        def local(self, name):
            value = self._ev.local(name)
            if name == "function_environment":
                value = dict(value, NATMETER_SUBNETS='[{"cidr":"10.0.0.0/33","az_id":"use1-az1"}]')
            return value

    monkeypatch.setitem(contract.SCENARIOS, "broken_subnets", variables)
    monkeypatch.setattr(contract, "evaluator", lambda v: Broken(real(v)))
    with pytest.raises(AssertionError, match="rejects the module's configuration"):
        contract.test_function_accepts_the_whole_environment("broken_subnets", metric_model, tmp_path)


# ---------------------------------------------------------------------------
# Documentation and the example
# ---------------------------------------------------------------------------


def test_readme_documents_cross_az():
    text = (MODULE / "README.md").read_text()
    section = text[text.index("## Cross-AZ data transfer"):]
    section = section[: section.index("\n## ", 4)]
    for needle in (
        "`subnets`", "NATMETER_SUBNETS", "$0.01/GB", "us-east-1", "once", "az_id", "NATMETER_NAT_GATEWAYS",
        "availability_zone_id", "NatCrossAzBytes", "NatCrossAzCost", "NatGatewayId", "4 KB", "private_subnet_objects",
    ):
        assert needle in section, f"the README's cross-AZ section must mention {needle!r}"
    assert "| `subnets` |" in text, "the Inputs table lists the variable"


def test_the_complete_example_passes_its_private_subnets():
    cfg = tfeval.load_config(INFRA / "examples" / "complete")
    call = cfg.module_calls["natmeter"]
    assert ("module", "vpc", "private_subnet_objects") in {r[:3] for r in tfeval.references(call.attributes["subnets"])}
    objects = [
        {"id": "subnet-1", "cidr_block": "10.0.0.0/20", "availability_zone": "us-east-1a", "availability_zone_id": "use1-az6"},
        {"id": "subnet-2", "cidr_block": "10.0.16.0/20", "availability_zone": "us-east-1b", "availability_zone_id": "use1-az1"},
    ]
    ev = tfeval.Evaluator(cfg, {})
    value = ev.expr(call.attributes["subnets"], {"module": {"vpc": {"private_subnet_objects": objects}}})
    assert value == [{"cidr": "10.0.0.0/20", "az_id": "use1-az6"}, {"cidr": "10.0.16.0/20", "az_id": "use1-az1"}]
    assert _rejections(value) == []
