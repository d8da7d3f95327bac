"""A message that cannot be stored is never acknowledged AA, and the sender is told to resend.

The fault is real: the jobs table disappears under the running app (renamed
through a second SQLite connection), so the accept path's own INSERT fails in
the database. Over HTTP the AR comes with 503 whatever the version writes the
ERR code as (ERR-3 from 2.5, ERR-1 before) and whatever the field separator;
once the table is back, the same message is AA with a job: nothing was
half-written.
"""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from sluicegate.app import create_app
from tests.conftest import FAKE_INFERENCE, make_settings

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


def oru(sep: str, version: str, control_id: str) -> bytes:
    lines = [
        ["MSH", "^~\\&", "RIS", "HOSP", "SG", "SG", "20250101120000", "", "ORU^R01"],
        ["PID", "1", "", "MRN77^^^HOSP^MR", "", "Doe^Jane"],
        ["OBR", "1", "P77", "F77", "CTH^CT HEAD^L"],
        ["OBX", "1", "TX", "", "", "No acute intracranial abnormality."],
    ]
    lines[0] += [control_id, "P", version]
    text = "\r".join(
        "MSH" + sep + sep.join(line[1:]) if line[0] == "MSH" else sep.join(line) for line in lines
    )
    return text.encode()


def _fields(ack: str, sep: str) -> dict[str, list[str]]:
    return {line[:3]: line.split(sep) for line in ack.split("\r") if line}


def _jobs(path: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])


@pytest.mark.parametrize(("sep", "version"), [("|", "2.5.1"), ("|", "2.3"), ("#", "2.5")])
def test_storage_failure_is_ar_207_with_503_and_a_resend_succeeds(
    tmp_path, sep: str, version: str
) -> None:
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    database = settings.database_url.split("///", 1)[1]
    message = oru(sep, version, f"STORE-{version}")
    with TestClient(create_app(settings, run_relay=False)) as http:
        with sqlite3.connect(database) as db:
            db.execute("ALTER TABLE jobs RENAME TO jobs_away")
        failed = http.post("/hl7/v2", content=message, headers=ER7)
        assert failed.status_code == 503
        assert "content-location" not in failed.headers
        ack = _fields(failed.text, sep)
        assert ack["MSA"][1:3] == ["AR", f"STORE-{version}"]
        # ERR-3 (2.5+) or ERR-1's fourth component (2.3/2.4) carries code 207
        code = ack["ERR"][3] if version >= "2.5" else ack["ERR"][1].split("^")[3]
        assert code.split("^")[0].split("&")[0] == "207"
        with sqlite3.connect(database) as db:
            db.execute("ALTER TABLE jobs_away RENAME TO jobs")
            items = db.execute("SELECT count(*) FROM work_items").fetchone()[0]
        assert items == 0  # the failed transaction left nothing behind
        resent = http.post("/hl7/v2", content=message, headers=ER7)
        assert resent.status_code == 200
        assert _fields(resent.text, sep)["MSA"][1] == "AA"
        assert resent.headers["content-location"].startswith("/jobs/")
    assert _jobs(database) == 1
