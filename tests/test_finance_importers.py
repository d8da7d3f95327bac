"""Every finance file in the corpus imports; where the source library shipped an
expected output beside it, our import agrees with it."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from sluicegate.adapters.finance.analysis import analyse
from sluicegate.adapters.finance.importers import ImportFailed, detect, import_file
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import ChecksOptions
from tests.conftest import CORPUS

FINANCE = CORPUS / "finance"
INPUTS = sorted(p for p in FINANCE.iterdir() if ".expected." not in p.name)
NO_FINANCIAL_FACTS = {  # cover-page / proxy-statement facts only: nothing in the vocabulary
    "sec-xbrl-WatersCorp-8-K-20240108.xml",
    "sec-ixbrl-excerpt-Cabot-DEF14A-2023.html",
}
NEGATIVE = {"camt053-NEG-v2.wrong.xml", "ofxparse-NEG-decimal_error.ofx"}


def _tx(reports: list[Report]) -> list[tuple[date, Decimal]]:
    return [(t.date, t.amount) for r in reports for a in r.accounts for t in a.transactions]


@pytest.mark.parametrize(
    "path", [p for p in INPUTS if p.name not in NEGATIVE], ids=lambda p: p.name
)
def test_every_corpus_file_imports_into_valid_reports(path: Path) -> None:
    fmt, reports = import_file(path)
    assert fmt in {
        "camt053",
        "csv",
        "mt940",
        "ofx",
        "companyfacts",
        "xbrl",
        "ixbrl",
        "markdown-filing",
    }
    if path.name in NO_FINANCIAL_FACTS:
        assert reports == []
        return
    assert reports
    for index, report in enumerate(reports):
        Report.model_validate(report.model_dump(mode="json"))  # round-trips exactly
        failed = [c.name for c in analyse(report, ChecksOptions()).failed]
        assert failed == KNOWN_FAILURES.get((path.name, index), []), index


# Test snippets that really do not add up (bookings cut from the sample, an edited
# closing balance): the checks must report them, not hide them.
KNOWN_FAILURES = {
    ("camt053.v8.xml", 0): ["account 1.balance_continuity"],
    ("mt940-jejik-abnamro.sta", 0): ["account 1.balance_continuity"],
    ("mt940-jejik-abnamro.sta", 1): ["account 1.balance_continuity"],
    ("mt940-betterplace-sepa_snippet.sta", 1): ["account 1.balance_continuity"],
}


def test_a_statement_that_does_not_add_up_is_reported_with_its_difference() -> None:
    _, reports = import_file(FINANCE / "mt940-jejik-abnamro.sta")
    check = analyse(reports[0], ChecksOptions()).failed[0]
    assert (check.expected, check.actual, check.difference) == (
        Decimal("876.84"),
        Decimal("2914.84"),
        Decimal("2038.00"),
    )


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_negative_samples_are_refused_cleanly(name: str) -> None:
    with pytest.raises(ImportFailed) as err:
        import_file(FINANCE / name)
    assert "$120" not in str(err.value)


def test_an_unknown_format_is_refused_by_name_not_guessed_at(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="format"):
        detect(b"Dear shareholders: what a year it was.", "letter.md")


class _OracleLoader(yaml.SafeLoader):
    """Reads the mt940 library's pickled-object YAML as plain data (no code runs)."""


def _apply(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    args = loader.construct_sequence(node, deep=True)  # type: ignore[arg-type]
    if suffix == "decimal.Decimal":
        return Decimal(args[0])
    if suffix == "mt940.models.Date":  # pickled datetime.date state: year (2 bytes), month, day
        raw = args[0]
        return date(raw[0] * 256 + raw[1], raw[2], raw[3])
    return args


def _object(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    data: dict[str, Any] = {}
    yield data  # objects refer back to their parent: build them in two steps
    data.update(loader.construct_mapping(node, deep=True))  # type: ignore[arg-type]


_OracleLoader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", _apply)
_OracleLoader.add_multi_constructor("tag:yaml.org,2002:python/object:", _object)
_OracleLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix
)


@pytest.mark.parametrize("stem", ["mt940-jejik-abnamro", "mt940-betterplace-sepa_snippet"])
def test_mt940_agrees_with_the_libraries_expected_parse(stem: str) -> None:
    oracle = yaml.load((FINANCE / f"{stem}.expected.yml").read_text(), Loader=_OracleLoader)
    expected = [(t["data"]["date"], t["data"]["amount"]["amount"]) for t in oracle["transactions"]]
    _, reports = import_file(FINANCE / f"{stem}.sta")
    assert _tx(reports) == expected
    openings = {r.accounts[0].opening.amount for r in reports if r.accounts[0].opening}
    closings = {r.accounts[0].closing.amount for r in reports if r.accounts[0].closing}
    assert oracle["data"]["final_opening_balance"]["amount"]["amount"] in openings
    assert oracle["data"]["final_closing_balance"]["amount"]["amount"] in closings
    assert oracle["data"]["account_identification"] in {r.accounts[0].account for r in reports}


def test_mt940_asn_bank_export_imports_every_statement() -> None:
    _, reports = import_file(FINANCE / "mt940-ASNB-0708271685_09022020.940.txt")
    assert len(reports) == 31
    assert {r.accounts[0].iban for r in reports} == {"NL81ASNB9999999999"}


def test_camt053_agrees_with_genkgo_camt_expected_json() -> None:
    oracle = json.loads((FINANCE / "camt053.v2.multi.statement.expected.json").read_text())
    _, reports = import_file(FINANCE / "camt053.v2.multi.statement.xml")
    mine = {
        (a.iban, t.date.isoformat(), int(t.amount * 100))
        for r in reports
        for a in r.accounts
        for t in a.transactions
    }
    for entry in oracle["getEntries"]:
        record = entry["getRecord"]
        iban = record["getAccount"]["getIban"]["getIban"]
        booked = entry["getBookingDate"]["0"][:10]
        assert (iban, booked, int(entry["getAmount"]["getAmount"])) in mine
        statement = next(
            r.accounts[0]
            for r in reports
            if any(
                t.date.isoformat() == booked
                and int(t.amount * 100) == int(entry["getAmount"]["getAmount"])
                for t in r.accounts[0].transactions
            )
        )
        balances = {
            b["getType"]: (b["getDate"]["0"][:10], int(b["getAmount"]["getAmount"]))
            for b in record["getBalances"]
        }
        assert statement.opening and statement.closing
        assert balances["opening"] == (
            statement.opening.date.isoformat(),
            int(statement.opening.amount * 100),
        )
        assert balances["closing"] == (
            statement.closing.date.isoformat(),
            int(statement.closing.amount * 100),
        )


def test_camt053_v8_reads_the_newer_namespace() -> None:
    fmt, reports = import_file(FINANCE / "camt053.v8.xml")
    assert fmt == "camt053" and reports[0].accounts[0].transactions


def test_schwab_csv_agrees_with_csv2ofx_expected_ofx() -> None:
    text = (FINANCE / "csv2ofx-schwab-checking.expected.ofx").read_text()
    oracle = etree.fromstring(text[text.index("<OFX>") :].encode())
    expected = sorted(
        (
            datetime.strptime(t.findtext("DTPOSTED")[:8], "%Y%m%d").date(),
            Decimal(t.findtext("TRNAMT")),
        )
        for t in oracle.iter("STMTTRN")
    )
    _, reports = import_file(FINANCE / "csv2ofx-schwab-checking.csv")
    assert sorted(_tx(reports)) == expected
    closing = reports[0].accounts[0].closing
    assert closing is not None and closing.amount == Decimal(oracle.findtext(".//LEDGERBAL/BALAMT"))
    assert reports[0].accounts[0].currency == oracle.findtext(".//CURDEF")


def _qif(path: Path) -> list[dict[str, str]]:
    """Transactions of a QIF file: N(umber), D(ate), T(otal), P(ayee), with their account."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    account, in_account = "", False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("!Account"):
            in_account, current = True, {}
        elif line.startswith("!"):
            continue
        elif line == "^":
            if in_account:
                account, in_account = current.get("N", ""), False
            elif current:
                records.append({**current, "account": account})
            current = {}
        elif line and line[0] in "NDTP" and line[0] not in current:
            current[line[0]] = line[1:]
    return records


def test_ubs_csv_agrees_with_csv2ofx_expected_qif() -> None:
    expected = {
        (r["N"], r["D"], Decimal(r["T"])) for r in _qif(FINANCE / "csv2ofx-ubs-ch-fr.expected.qif")
    }
    _, reports = import_file(FINANCE / "csv2ofx-ubs-ch-fr_trimmed.csv")
    mine = {
        (t.reference, t.date.isoformat(), t.amount)
        for r in reports
        for a in r.accounts
        for t in a.transactions
    }
    assert mine == expected
    assert reports[0].accounts[0].closing is not None
    assert reports[0].accounts[0].closing.amount == Decimal("11413.94")


def test_xero_journal_agrees_with_csv2ofx_expected_qif() -> None:
    _, reports = import_file(FINANCE / "csv2ofx-xero-journal.csv")
    sums: dict[tuple[str, str], Decimal] = {}
    for r in reports:
        for a in r.accounts:
            for t in a.transactions:
                key = (a.account, t.reference or "")
                sums[key] = sums.get(key, Decimal(0)) + t.amount
    oracle = _qif(FINANCE / "csv2ofx-xero.expected.qif")
    assert oracle
    for record in oracle:
        day = datetime.strptime(record["D"], "%m/%d/%Y").date()
        assert any(t.date == day for r in reports for a in r.accounts for t in a.transactions)
        # csv2ofx writes each split from the other side of the journal: the sign flips.
        assert sums[(record["account"], record.get("N", ""))] == -Decimal(record["T"])


def test_apple_balance_sheet_csv_is_scaled_and_balances() -> None:
    _, (report,) = import_file(FINANCE / "edgartools-apple_balance_sheet_FY2023.csv")
    values = {i.concept: i for s in report.statements for i in s.items}
    assert values["total_assets"].value == Decimal("352583000000")
    assert values["ext:common_stock_shares_issued"].value == Decimal("15550061")
    assert values["ext:common_stock_shares_issued"].unit == "shares"
    assert report.prior is not None and report.prior.period.end == date(2022, 9, 24)
    checks = {c.name: c.status for c in analyse(report, ChecksOptions()).checks}
    assert checks["assets_equal_liabilities_plus_equity"] == "pass"


def test_xbrl_instance_and_companyfacts_map_tags_to_concepts() -> None:
    _, (nflx,) = import_file(FINANCE / "sec-xbrl-nflx-20100930-10Q.xml")
    values = {i.concept: i for s in nflx.statements for i in s.items}
    assert values["total_assets"].value == Decimal("770283000")
    assert values["total_assets"].source == "us-gaap:Assets"
    assert nflx.entity.name and nflx.period.end == date(2010, 9, 30)
    _, (lpa,) = import_file(
        FINANCE / "sec-companyfacts-CIK0001997711-LogisticPropertiesAmericas.json"
    )
    values = {i.concept: i for s in lpa.statements for i in s.items}
    assert values["total_assets"].value == Decimal("607019578")
    assert lpa.prior is not None
    prior = {i.concept: i for s in lpa.prior.statements for i in s.items}
    assert prior["total_assets"].value == Decimal("590825310")
    assert lpa.entity.cik == "1997711"


IXBRL = b"""<html><body><ix:header><ix:resources>
<xbrli:context id="c"><xbrli:period><xbrli:instant>2024-12-31</xbrli:instant></xbrli:period>
</xbrli:context>
<xbrli:context id="seg"><xbrli:entity><xbrli:segment>x</xbrli:segment></xbrli:entity>
<xbrli:period><xbrli:instant>2024-12-31</xbrli:instant></xbrli:period></xbrli:context>
<xbrli:unit id="u"><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unit>
</ix:resources></ix:header>
<ix:nonNumeric name="dei:EntityRegistrantName" contextRef="c">Acme Corp</ix:nonNumeric>
<p><ix:nonFraction name="us-gaap:Assets" contextRef="c" unitRef="u" scale="6"
 format="ixt:num-dot-decimal">1,650.5</ix:nonFraction>
<ix:nonFraction name="us-gaap:Assets" contextRef="seg" unitRef="u">1</ix:nonFraction>
<ix:nonFraction name="us-gaap:Liabilities" contextRef="c" unitRef="u" scale="6"
 sign="-" format="ixt:num-dot-decimal">900</ix:nonFraction></p></body></html>"""


def test_inline_xbrl_applies_scale_and_sign_and_skips_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "filing.htm"
    path.write_bytes(IXBRL)
    fmt, (report,) = import_file(path)
    assert fmt == "ixbrl" and report.entity.name == "Acme Corp"
    values = {i.concept: i.value for s in report.statements for i in s.items}
    assert values == {
        "total_assets": Decimal("1650500000.0"),
        "total_liabilities": Decimal("-900000000"),
    }


def test_10q_markdown_balance_sheet_agrees_with_the_edgartools_csv_for_the_same_date() -> None:
    fmt, (q3,) = import_file(FINANCE / "sec-10Q-Apple-text.md")
    _, (fy,) = import_file(FINANCE / "edgartools-apple_balance_sheet_FY2023.csv")
    assert fmt == "markdown-filing" and q3.entity.name == "Apple Inc."
    assert q3.period.end == date(2024, 6, 29)
    assert q3.prior is not None and fy.period.end == q3.prior.period.end == date(2023, 9, 30)
    prior = {i.concept: i.value for s in q3.prior.statements for i in s.items}
    annual = {i.concept: i.value for s in fy.statements for i in s.items}
    for concept in ("total_assets", "total_liabilities", "total_equity", "cash", "current_assets"):
        assert prior[concept] == annual[concept], concept
    current = {i.concept: i.value for s in q3.statements for i in s.items}
    assert current["total_assets"] == Decimal("331612000000")
