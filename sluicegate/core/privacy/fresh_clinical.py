"""Clinical filler for the fresh-data corpus: vitals, labs, doses, diagnoses, anatomy.

None of these values is an identifier. They are drawn at random for every note
so that the words a drafting model needs (and the numbers that look like dates,
phones or ids: ``124/78``, ``5/5``, ``L4-L5``, ``0.08 mcg/kg/min``) are there to
be over-redacted, which shows up as false positives and lost content.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sluicegate.core.privacy.fresh_formats import clock

Filler = Callable[[random.Random], str]


def _int(lo: int, hi: int, step: int = 1) -> Filler:
    return lambda r: str(r.randrange(lo, hi + 1, step))


def _dec(lo: float, hi: float, digits: int = 1) -> Filler:
    return lambda r: f"{r.uniform(lo, hi):.{digits}f}"


def _pick(*options: str) -> Filler:
    return lambda r: r.choice(options)


MEDS = (
    "metoprolol tartrate 25 mg PO BID",
    "lisinopril 10 mg daily",
    "Lasix 40 mg IV BID",
    "Coumadin 5 mg qHS",
    "Keppra 500 mg BID",
    "vancomycin 1 g IV q12h",
    "insulin glargine 18 units qHS",
    "Tylenol 650 mg PO q6h PRN",
    "albuterol 2.5 mg neb q4h PRN wheeze",
    "pantoprazole 40 mg daily",
    "apixaban 5 mg BID",
    "Lipitor 40 mg qHS",
    "Flomax 0.4 mg qHS",
    "prednisone 40 mg daily x 5 days",
    "hydralazine 10 mg IV PRN SBP > 160",
    "Ativan 0.5 mg IV q6h PRN anxiety",
    "morphine 2 mg IV q3h PRN",
    "KCl 40 mEq PO x1",
    "Synthroid 88 mcg daily",
    "Plavix 75 mg daily",
    "Augmentin 875 mg BID x 7 days",
    "Bactrim DS 1 tab BID",
    "Zofran 4 mg IV q6h PRN nausea",
    "Colace 100 mg BID",
    "Percocet 5/325 1 tab q6h PRN",
    "gabapentin 300 mg TID",
    "sertraline 50 mg daily",
    "metformin 1000 mg BID",
    "amlodipine 5 mg daily",
    "Eliquis 2.5 mg BID",
    "Seroquel 25 mg qHS PRN agitation",
    "Dilaudid 0.5 mg IV q2h PRN",
)
DIAGNOSES = (
    "community-acquired pneumonia",
    "NSTEMI",
    "CHF exacerbation",
    "urosepsis",
    "COPD exacerbation",
    "DKA",
    "upper GI bleed",
    "acute pancreatitis",
    "small bowel obstruction",
    "left MCA ischemic stroke",
    "right hip fracture",
    "C. diff colitis",
    "cellulitis of the left lower extremity",
    "new-onset atrial fibrillation with RVR",
    "symptomatic hyponatremia",
    "syncope",
    "bilateral pulmonary emboli",
    "Guillain-Barre syndrome",
)
HISTORY = (
    "HTN, HLD and DM2",
    "CAD s/p CABG",
    "COPD on 2L home O2",
    "ESRD on HD MWF",
    "afib on anticoagulation",
    "CKD stage 3",
    "hypothyroidism",
    "Parkinson's disease",
    "Crohn's disease",
    "Hodgkin lymphoma in remission",
    "Alzheimer's dementia",
    "OSA on CPAP",
    "Graves' disease",
    "Barrett's esophagus",
    "Hashimoto's thyroiditis",
    "Bell's palsy",
)

FILLERS: dict[str, Filler] = {
    "hr": _int(52, 128),
    "bp": lambda r: f"{r.randint(88, 178)}/{r.randint(42, 98)}",
    "sbp": _int(78, 196),
    "map": _int(55, 95),
    "rr": _int(10, 32),
    "temp": lambda r: r.choice([f"{r.uniform(96.4, 102.6):.1f}", f"{r.uniform(35.8, 39.4):.1f}C"]),
    "spo2": _int(88, 100),
    "fio2": _pick("30%", "35%", "40%", "50%", "0.6"),
    "peep": _pick("5", "8", "10", "12"),
    "tv": _int(350, 550, 50),
    "gcs": _int(3, 15),
    "pupil": _pick("2", "3", "4"),
    "k": _dec(2.9, 5.6),
    "mg": _dec(1.4, 2.6),
    "na": _int(124, 148),
    "cr": _dec(0.6, 3.8),
    "cr2": _dec(0.6, 1.4),
    "bun": _int(8, 64),
    "hgb": _dec(6.8, 14.9),
    "hgb2": _dec(8.0, 11.0),
    "hct": _dec(21, 44),
    "wbc": _dec(2.1, 24.5),
    "plt": _int(42, 480),
    "inr": _dec(0.9, 4.2),
    "ptt": _int(28, 110),
    "glu": _int(62, 388),
    "glu2": _int(120, 260),
    "lactate": _dec(0.8, 6.2),
    "trop": lambda r: f"{r.uniform(0.01, 2.5):.2f}",
    "a1c": _dec(5.6, 11.8),
    "ef": _int(20, 70, 5),
    "uo": _int(15, 180),
    "uo2": _int(300, 2400, 50),
    "tf": _int(20, 70, 5),
    "bolus": _pick("250", "500", "1000"),
    "units": _int(2, 40),
    "heparin": _int(800, 1800, 50),
    "warfarin": _pick("2.5", "5", "7.5"),
    "lasix": _pick("20", "40", "80"),
    "statin": _pick("20", "40", "80"),
    "edema": _pick("1", "2", "3"),
    "cvp": _int(4, 18),
    "pa": lambda r: f"{r.randint(24, 62)}/{r.randint(8, 30)}",
    "wedge": _int(8, 28),
    "ci": _dec(1.6, 3.8),
    "size": _dec(0.3, 6.5),
    "size2": _dec(0.3, 6.5),
    "liver": _dec(12, 19),
    "n": _int(2, 14),
    "n2": _pick("1", "2", "3"),
    "pain": _int(0, 10),
    "strength": _pick("3", "4", "4+", "5"),
    "murmur": _pick("1", "2", "3"),
    "dist": _int(50, 300, 25),
    "esi": _pick("ESI 2", "ESI 3", "ESI 4"),
    "clock": clock,
    "shift": _pick("7a-7p", "day", "night", "7p-7a", "evening"),
    "drip": lambda r: r.choice(
        [
            f"levophed at {r.uniform(0.02, 0.3):.2f} mcg/kg/min",
            f"neo at {r.uniform(0.5, 3):.1f} mcg/kg/min",
            f"propofol {r.randrange(10, 60, 5)} mcg/kg/min",
            f"fentanyl {r.randrange(25, 200, 25)} mcg/hr",
            f"insulin gtt {r.randint(1, 12)} units/hr",
            f"nitro gtt {r.randrange(10, 200, 10)} mcg/min",
            "amiodarone 0.5 mg/min",
        ]
    ),
    "abx": _pick(
        "vanc/zosyn",
        "cefepime",
        "ceftriaxone 1 g IV daily",
        "meropenem",
        "levofloxacin 750 mg daily",
        "azithromycin",
        "flagyl",
    ),
    "repletion": _pick("40 mEq KCl PO", "2 g Mg sulfate IV", "20 mEq KCl IV x2"),
    "med": lambda r: r.choice(MEDS),
    "dx": lambda r: r.choice(DIAGNOSES),
    "dx2": lambda r: r.choice(DIAGNOSES),
    "pmh": lambda r: r.choice(HISTORY),
    "pmh2": lambda r: r.choice(HISTORY),
    "surgery": _pick(
        "CABG x3",
        "appendectomy",
        "right TKR",
        "lap cholecystectomy",
        "Whipple procedure",
        "Nissen fundoplication",
        "AVR with a St. Jude valve",
    ),
    "cc": _pick(
        "chest pain radiating to the left arm",
        "shortness of breath",
        "RLQ abdominal pain",
        "mechanical fall",
        "acute confusion",
        "fever and rigors",
        "hematemesis",
        "left-sided weakness",
    ),
    "symptom": _pick(
        "productive cough",
        "dysuria",
        "dizziness",
        "swelling of both ankles",
        "diarrhea",
        "low back pain",
    ),
    "eval": _pick("pneumonia", "PE", "fracture", "free air", "hydronephrosis", "hemorrhage"),
    "exam": _pick(
        "CT CHEST W/O CONTRAST",
        "MRI LUMBAR SPINE",
        "CXR PA/LAT",
        "CT ABDOMEN/PELVIS WITH CONTRAST",
        "US RUQ",
        "CTA CHEST",
    ),
    "modality": _pick("CT chest", "chest radiograph", "MRI brain", "CT abdomen/pelvis"),
    "lobe": _pick("right upper lobe", "left lower lobe", "lingula", "right middle lobe"),
    "level": _pick("C5-C6", "L4-L5", "L5-S1", "T11-T12", "C3-4", "L2"),
    "side": _pick("left", "right"),
    "imp": _pick(
        "No acute cardiopulmonary process",
        "Interval increase in size of the pulmonary nodule",
        "Small left pleural effusion with adjacent atelectasis",
        "No evidence of pulmonary embolism",
        "Stable postsurgical changes",
        "Moderate right hydronephrosis",
        "Acute displaced fracture of the right femoral neck",
    ),
    "payer": _pick("Medicare", "Medicaid", "Blue Cross", "Aetna", "Tricare"),
    "day_ref": _pick("yesterday", "this morning", "last night", "2 days ago", "after lunch"),
}
