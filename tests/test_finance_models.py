"""Finance domain logic: exact decimals, vocabulary, checks, ratios, grounding."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from sluicegate.adapters.finance import FinanceAdapter
from sluicegate.adapters.finance.analysis import analyse, grounding_pool
from sluicegate.adapters.finance.errors import ReportRejected, load_report
from sluicegate.adapters.finance.grounding import check_narrative, problems
from sluicegate.adapters.finance.models import LineItem, Report
from sluicegate.adapters.finance.options import ChecksOptions, OptionsError, parse_options
from sluicegate.adapters.finance.vocabulary import concept_for_tag
from sluicegate.adapters.finance.workitem import build_item, identifiers
from sluicegate.core.interfaces import Generation, Zone

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "finance" / "report.json"
# The sample's prompt inputs as built at accept time before the facts text moved to
# the worker: the model must keep getting exactly these bytes, in this order.
GOLDEN_PROMPT = Path(__file__).resolve().parent / "golden" / "finance_prompt_inputs.json"


def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def report(doc: dict | None = None) -> Report:
    return Report.model_validate(doc or sample())


def generation(text: str) -> Generation:
    return Generation(text=text, backend_id="t", model="m", zone=Zone.ONPREM, latency_s=0.0)


def test_python_floats_are_refused_and_json_numbers_parse_exactly() -> None:
    with pytest.raises(ValidationError, match="not a binary float"):
        LineItem(concept="cash", value=0.1)  # type: ignore[arg-type]
    doc = sample()
    doc["statements"][0]["items"][0]["value"] = 0.1
    with pytest.raises(ValidationError) as err:
        Report.model_validate(doc)
    assert err.value.errors()[0]["loc"] == ("statements", 0, "items", 0, "value")
    raw = SAMPLE.read_text().replace('"182400000.00"', "182400000.10000000000000001")
    parsed = load_report(raw)
    assert parsed.statements[0].items[0].value == Decimal("182400000.10000000000000001")
    assert report().model_dump(mode="json")["statements"][0]["items"][0]["value"] == "182400000.00"


def test_errors_name_each_field_path() -> None:
    doc = sample()
    doc["currency"] = "usd"
    doc["statements"][1]["items"][2]["concept"] = "profit_ish"
    doc["statements"][0]["items"][1]["value"] = "12,5"
    with pytest.raises(ReportRejected) as err:
        load_report(json.dumps(doc))
    fields = {e["field"] for e in err.value.errors}
    assert fields == {"currency", "statements.1.items.2.concept", "statements.0.items.1.value"}
    assert err.value.status == 422
    with pytest.raises(ReportRejected) as bad:
        load_report(b"{not json")
    assert bad.value.status == 400


def test_vocabulary_maps_us_gaap_and_ifrs_tags() -> None:
    assert concept_for_tag("us-gaap", "Assets") == "total_assets"
    assert concept_for_tag("ifrs-full", "ProfitLoss") == "net_income"
    assert (
        concept_for_tag("us-gaap", "NetCashProvidedByUsedInOperatingActivities")
        == "operating_cash_flow"
    )
    assert concept_for_tag("us-gaap", "NoSuchTag") is None


def test_checks_pass_on_the_sample_and_fail_beyond_tolerance() -> None:
    checks = {c.name: c for c in analyse(report(), ChecksOptions()).checks}
    assert checks["assets_equal_liabilities_plus_equity"].status == "pass"
    assert checks["net_income_ties_to_cash_flow"].status == "pass"
    assert checks["cash_roll_forward"].status == "pass"
    doc = sample()
    doc["statements"][0]["items"][3]["value"] = "1650000000.02"  # total assets off by 0.02
    off = analyse(report(doc), ChecksOptions())
    failed = {c.name: c for c in off.failed}
    assert failed["assets_equal_liabilities_plus_equity"].difference == Decimal("-0.02")
    loose = analyse(report(doc), ChecksOptions(tolerance=Decimal("0.05")))
    assert not [c for c in loose.failed if c.name == "assets_equal_liabilities_plus_equity"]


def test_statement_balance_continuity() -> None:
    doc = {
        "entity": {"name": "A Customer"},
        "period": {"end": "2024-01-31"},
        "currency": "EUR",
        "kind": "bank_statement",
        "accounts": [
            {
                "account": "NL91ABNA0417164300",
                "iban": "NL91ABNA0417164300",
                "currency": "EUR",
                "opening": {"date": "2024-01-01", "amount": "100.00"},
                "closing": {"date": "2024-01-31", "amount": "70.10"},
                "transactions": [
                    {"date": "2024-01-05", "amount": "-30.00"},
                    {"date": "2024-01-06", "amount": "0.10"},
                ],
            }
        ],
    }
    checks = analyse(report(doc), ChecksOptions()).checks
    assert [c.status for c in checks] == ["pass"]
    doc["accounts"][0]["closing"]["amount"] = "70.00"
    assert analyse(report(doc), ChecksOptions()).checks[0].status == "fail"


def test_ratios_and_growth_are_exact() -> None:
    ratios = {r.name: r for r in analyse(report(), ChecksOptions()).ratios}
    assert ratios["current_ratio"].value == Decimal("1.51")
    assert ratios["net_margin"].value == Decimal("9.0")
    assert ratios["revenue_growth"].value == Decimal("12.5")
    assert ratios["revenue_growth"].facts == ("F9", "F21")


def test_grounding_accepts_formatting_and_rounding_and_flags_the_rest() -> None:
    r = report()
    pool = grounding_pool(r, analyse(r, ChecksOptions()))
    text = (
        "Revenue rose 12.5% to $1.24 billion in 2024. Net income was $111.6 million, up from "
        "(94.5) million. Total assets were $1,650,000,000 at December 31, 2024. "
        "The current ratio was 1.51x."
    )
    grounding = check_narrative(text, pool)
    assert grounding.grounded, grounding.ungrounded
    bad = check_narrative("Revenue grew 12.7% and EBITDA reached $300 million.", pool)
    assert [n.text for n in bad.ungrounded] == ["12.7%", "$300 million"]
    assert problems(bad, {}) == [
        "ungrounded number 12.7% in sentence 1",
        "ungrounded number $300 million in sentence 1",
    ]


def test_problems_never_echo_identifier_values() -> None:
    r = report()
    pool = grounding_pool(r, analyse(r, ChecksOptions()))
    found = check_narrative("Payment to account 517852257 was made.", pool)
    lines = problems(found, {"account": ["517852257"]})
    assert lines and all("517852257" not in line for line in lines)


def test_verify_and_render_produce_a_flagged_traceable_summary() -> None:
    adapter = FinanceAdapter()
    r = report()
    item = adapter.complete_item(build_item(r, tenant="t", channel="finance"))
    assert "GB123456789" not in item.prompt_inputs["facts"]
    assert item.identifiers["tax_id"] == ["GB123456789"]
    good = generation("Revenue grew 12.5% to $1.24 billion; net margin was 9.0%.")
    assert adapter.verify(item, good) == []
    bad = generation("Revenue grew 12.7% to $1.24 billion.")
    assert adapter.verify(item, bad) == ["ungrounded number 12.7% in sentence 1"]
    rendered = json.loads(adapter.render(item, bad, "job-1").body)
    assert rendered["grounding"]["flagged"] is True
    assert rendered["grounding"]["ungrounded"] == ["12.7%"]
    assert {c["status"] for c in rendered["checks"]} == {"pass"}
    assert rendered["facts"][8] == {
        "id": "F9",
        "period": "current",
        "statement": "income_statement",
        "concept": "revenue",
        "label": "Revenue",
        "value": "1240000000.00",
        "unit": "USD",
        "line_item": "/statements/1/items/0",
        "source": "us-gaap:Revenues",
    }
    markdown = rendered["markdown"]
    assert "$1.24 billion [F9]" in markdown and "12.7% [UNGROUNDED]" in markdown
    row = "| F9 | current | income_statement | Revenue | 1,240,000,000.00 | USD |"
    assert row + " `/statements/1/items/0` | us-gaap:Revenues |" in markdown
    assert json.loads(adapter.render(item, good, "job-1").body)["grounding"]["flagged"] is False


def test_identifiers_cover_accounts_ibans_names_cards_and_tax_ids() -> None:
    doc = {
        "entity": {"name": "Jan Jansen", "tax_id": "123-45-6789"},
        "period": {"end": "2024-01-31"},
        "currency": "EUR",
        "kind": "bank_statement",
        "accounts": [
            {
                "account": "0417164300",
                "iban": "NL91ABNA0417164300",
                "holder": "Jan Jansen",
                "currency": "EUR",
                "transactions": [
                    {
                        "date": "2024-01-05",
                        "amount": "-30.00",
                        "counterparty": "Piet Pieters",
                        "description": "card 4111 1111 1111 1111 purchase",
                    }
                ],
            }
        ],
    }
    found = identifiers(report(doc))
    assert found["iban"] == ["NL91ABNA0417164300"]
    assert found["account"] == ["0417164300"]
    assert found["name"] == ["Jan Jansen", "Piet Pieters"]
    assert found["tax_id"] == ["123-45-6789"]
    assert found["card"] == ["4111 1111 1111 1111"]


def test_options_errors_name_the_field_path() -> None:
    with pytest.raises(OptionsError, match=r"adapters\.finance\.options\.checks\.tolerance"):
        parse_options({"checks": {"tolerance": 0.5}})
    with pytest.raises(OptionsError, match=r"adapters\.finance\.options\.csv\.nonsense"):
        parse_options({"csv": {"nonsense": 1}})
    assert parse_options({"checks": {"tolerance": "0.5"}}).checks.tolerance == Decimal("0.5")


def test_the_worker_builds_the_prompt_accept_time_used_to() -> None:
    stored = build_item(load_report(SAMPLE.read_bytes()), tenant="t", channel="finance")
    assert "facts" not in stored.prompt_inputs  # not built, not sealed at accept time
    completed = FinanceAdapter().complete_item(stored)
    golden = json.loads(GOLDEN_PROMPT.read_text())
    assert list(completed.prompt_inputs.items()) == list(golden.items())
    assert completed.payload == stored.payload and completed.identifiers == stored.identifiers


def test_an_item_stored_with_its_facts_text_keeps_it() -> None:
    """Items stored before the text moved to the worker carry their own: used as stored."""
    stored = build_item(report(), tenant="t", channel="finance")
    old = replace(stored, prompt_inputs={**stored.prompt_inputs, "facts": "as built at accept"})
    assert FinanceAdapter().complete_item(old) is old


def test_stored_keys_and_digest_are_those_of_items_stored_before() -> None:
    """A re-post of content stored before the facts text moved must find that job."""
    item = build_item(load_report(SAMPLE.read_bytes()), tenant="t", channel="finance")
    assert item.idempotency_key == "fin:nk:50acf8afb556e8c56b44b11eab91f4ad2f77745a020e1b3a"
    digest = "ecf63270f7546a1cfb7d660cf54b50e5701dbb445bbe0a5a6c495935726e77de"
    assert item.payload["content_digest"] == digest
