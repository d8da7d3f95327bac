"""Note styles and sentence templates for the fresh-data corpus (``fresh.py``).

Written for this generator, not taken from any corpus. Each ``{slot}`` is filled
by ``fresh.Note.fill``: identifier slots (names, dates, numbers, places) become
gold spans, clinical slots (vitals, labs, doses, anatomy) stay unannotated so
that a detector which over-redacts clinical content shows false positives.
Many clinical slots look like identifiers on purpose (``BP 124/78``, ``5/325``,
``2/6 murmur``, ``L4-L5``, eponyms such as Foley or Parkinson's).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """One kind of note: a header, a pool of body sentences, a closing line."""

    name: str
    headers: tuple[str, ...]
    body: tuple[str, ...]
    closers: tuple[str, ...]
    joiner: str  # between sentences


ICU = Style(
    "icu-nursing",
    (
        "NURSING PROGRESS NOTE - MICU - {date_time}",
        "Nsg note {date}, {shift} shift.",
        "CCU NURSING ADMIT NOTE {date_time}. Pt is a {age} yo {sex_m} admitted from {hospital}.",
        "{pt_formal} / {mrn}\nICU nursing flowsheet summary for {fdate}:",
    ),
    (
        "Neuro: A&Ox3, MAE, follows commands. GCS {gcs}. PERRL {pupil} mm brisk.",
        "CV: HR {hr} NSR, no ectopy. BP {bp}, MAP {map}. {drip}, titrated to MAP > 65.",
        "Resp: AC {tv}/{rr}/{peep}/{fio2}, sats {spo2}%. LS coarse bilat, sx for thick tan sputum.",
        "GI/GU: abd soft, +BS. Foley draining {uo} cc/hr clear yellow urine. TF at {tf} ml/hr.",
        "ID: Tmax {temp}, WBC {wbc}. On {abx}; blood cx from {date} pending.",
        "Labs: K {k}, Mg {mg}, repleted with {repletion}. Hct {hct}, stable from AM.",
        "{reltype} {rel} called at {clock} and was updated on pt's condition, can be reached "
        "at {phone}.",
        "Pt's {reltype}, {rel}, is HCP; cell {phone}.",
        "{Reltype} ({rel}) visited this evening and asked appropriate questions.",
        "Dr. {dr_last} at bedside at {clock}, aware of low UO; {bolus} ml NS bolus given.",
        "Skin: stage II ulcer to coccyx {size} x {size2} cm, DSD applied. Turned q2h.",
        "{pt_first} remains intubated and sedated on {drip}, RASS -2.",
        "Pt transferred from {hospital2} on {date} for further management of {dx}.",
        "Awaiting bed on {ward}; report called to {rn}.",
        "Plan: wean FiO2 as tolerated, AM labs, family meeting with {rel_title} on {date}.",
        "{pt_title} c/o incisional pain {pain}/10, medicated with {med} with good effect.",
        "Paged {dr} (pager {pager}) re: SBP {sbp}, new orders received.",
        "{PT_LAST} MAE AND WITHDRAWS TO PAIN; NO SEDATION SINCE {clock}.",
        "Pt's {reltype} {rel} left {his} number ({phone}) with the unit clerk.",
        "Heparin gtt at {heparin} units/hr per protocol; PTT {ptt} at {clock}.",
    ),
    (
        "Will continue to monitor closely. {rn}",
        "See flowsheet for details. -- {rn}",
        "",
    ),
    " ",
)

RADIOLOGY = Style(
    "radiology",
    (
        "{hospital} Department of Radiology\nEXAM: {exam}\nDATE: {date_time}",
        "PATIENT: {pt_formal}   MRN: {mrn_v}   DOB: {dob}   ACC#: {accession}\nEXAM: {exam}",
        "{exam} ({fdate}) -- ordered by {dr} for {pt_full}, {accession}",
    ),
    (
        "CLINICAL HISTORY: {age}-year-old {sex_m} with {dx}.",
        "INDICATION: {age} yo {sex_f}, {cc}. Evaluate for {eval}.",
        "COMPARISON: {modality} dated {date}.",
        "COMPARISON: None available.",
        "TECHNIQUE: Axial images were obtained from the thoracic inlet through the adrenal "
        "glands without IV contrast.",
        "FINDINGS: There is a {size} cm spiculated nodule in the {lobe}, previously {size2} cm.",
        "No pleural effusion or pneumothorax. Heart size is normal. Degenerative changes at "
        "{level}.",
        "Multilevel disc desiccation with a broad-based disc bulge at {level} causing mild "
        "canal narrowing.",
        "The liver measures {liver} cm in craniocaudal dimension without focal lesion.",
        "IMPRESSION: 1. {imp}. 2. Recommend follow-up CT in {n} months.",
        "Findings were discussed with Dr. {dr_last} by telephone at {clock} on {date}.",
        "Critical result called to {dr2} at {phone} on {date_time}; read back confirmed.",
        "Preliminary report reviewed with {dr} (pager {pager}).",
        "Prior outside study from {hospital2} ({year}) was not available for comparison.",
    ),
    (
        "Dictated by: {dr}\nSigned: {dr2} {date_time}",
        "Electronically signed by {dr} on {fdate}.",
        "Attending radiologist: {dr}",
    ),
    "\n",
)

DISCHARGE = Style(
    "discharge",
    (
        "DISCHARGE SUMMARY\nPatient: {pt_formal}  {mrn}  {account}\n"
        "Admission Date: {fdate}  Discharge Date: {fdate2}\nAttending: {dr}",
        "Discharge summary for {pt_full} (DOB {dob}), {hospital}, service of {dr}.",
        "NAME: {PT_FORMAL}\nUNIT NO: {mrn_v}\nAGE: {age}\nADMITTED: {fdate}\nDISCHARGED: {fdate2}",
    ),
    (
        "HISTORY OF PRESENT ILLNESS: {pt_title} is a {age}-year-old {sex_m} with a history of "
        "{pmh} who presented to the {hospital} ED with {cc}.",
        "HOSPITAL COURSE: {pt_last}'s {dx} was treated with {abx} for {n} days with "
        "resolution of fever.",
        "Creatinine peaked at {cr} on {date} and improved to {cr2} with IV fluids.",
        "Echo on {date} showed EF {ef}%, mild MR, no wall motion abnormality.",
        "DISCHARGE MEDICATIONS: {med}; {med}; {med}.",
        "FOLLOW-UP: with Dr. {dr_last} at {clinic} on {date} at {clock}; call {phone} to confirm.",
        "Discharged to {hospital2}, {street}, {city}, {state} {zip}.",
        "PAST MEDICAL HISTORY: {pmh}; s/p {surgery} ({year}); {pmh2} diagnosed in {year2}.",
        "{He} lives with {his} {reltype} {rel} in {city}.",
        "Code status: full code, confirmed with pt and {reltype} on {date}.",
        "Discharge condition: stable. Ambulating {dist} feet with walker, tolerating a "
        "regular diet.",
        "Hgb {hgb} on admission, transfused {n2} units PRBC with appropriate rise to {hgb2}.",
        "{pt_first} was seen by PT/OT on {ward} and cleared for discharge on {date}.",
        "Labs at discharge: Na {na}, K {k}, BUN/Cr {bun}/{cr}, INR {inr}.",
        "Of note, {he} is {age} years old and lives alone at {street}, {city} {zip}.",
    ),
    (
        "{dr}, attending physician. Dictated {date_time}.",
        "cc: Dr. {dr_last}, {clinic}",
        "Total discharge time over 30 minutes.",
    ),
    "\n",
)

REFERRAL = Style(
    "referral",
    (
        "{clinic}\n{street}\n{city}, {state} {zip}\nTel {phone}  Fax {fax}\n\n{fdate}\n\n"
        "Dear Dr. {dr_last},\nRe: {pt_full}, DOB {dob}, {mrn}",
        "{fdate}\n\n{dr2}\n{hospital}\n\nDear Dr. {dr_last},\nRE: {PT_FORMAL} ({dob})",
        "REFERRAL -- urgent\nTo: {clinic}  Fax: {fax}\nFrom: {dr}  Tel: {phone}\nDate: {fdate}\n"
        "Patient: {pt_full}  DOB: {dob}  {mrn}",
    ),
    (
        "Please see {pt_first} {pt_last} at your earliest convenience; {he} is keen to be seen.",
        "Thank you for seeing {pt_title}, a {age}-year-old {sex_m} I have followed since {year} "
        "for {pmh}.",
        "I would be grateful for your opinion regarding {his} {dx}, which has progressed over "
        "the last {n} months.",
        "{He} was last seen in clinic on {date}, when {his} HbA1c was {a1c}% and BP {bp}.",
        "Current medications include {med} and {med}.",
        "{He} lives at {addr} and can be reached on {phone} or by email at {email}.",
        "{His} {reltype}, {rel}, accompanies {him} to appointments and may call on {his} behalf.",
        "Please send correspondence to my office by fax at {fax}.",
        "Insurance: {payer}, member ID {member}; SSN {ssn}.",
        "Of note, {he} was hospitalized at {hospital2} in {monyear} with {dx2}.",
        "{pt_title}, aged {age}, remains independent in all activities of daily living.",
        "Examination: {murmur}/6 systolic murmur at the LUSB, {strength}/5 strength throughout.",
        "{pt_title}'s {reltype} ({rel_title}) is happy to be contacted at {email}.",
        "I enclose the letter from {dr2} of {date} and the CT report ({accession}).",
    ),
    (
        "Yours sincerely,\n\n{dr_sig}\n{clinic}",
        "With kind regards,\n{dr_sig}",
        "Many thanks,\n{dr_sig} (direct line {phone})",
    ),
    " ",
)

PHONE_MESSAGE = Style(
    "phone-message",
    (
        "TELEPHONE ENCOUNTER {date_time}",
        "Phone msg taken by {rn} on {date} at {clock}.",
        "PHONE NOTE -- {pt_formal} -- {mrn} -- {fdate}",
    ),
    (
        "Caller: {rel} ({reltype}), call back number {phone}.",
        "{pt_full} called c/o {symptom} x {n} days; denies fever, chest pain.",
        "Pt requesting refill of {med}; pharmacy fax {fax}.",
        "Message left on VM at {phone} asking pt to call back re: labs from {date}.",
        "Spoke with pt's {reltype} {rel_title}; instructed to go to the ED if symptoms worsen.",
        "Forwarded to Dr. {dr_last} for review; pt prefers a callback after {clock}.",
        "Pt states {his} new address is {addr}; demographics updated.",
        "Pt verified identity with DOB {dob} and {account}.",
        "Pt reports BS running {glu}-{glu2} fasting; advised to increase glargine to {units} "
        "units qHS.",
        "INR today {inr}, hold warfarin x1 then resume {warfarin} mg daily, recheck {date}.",
        "Contact: {email} (pt prefers email).",
        "{rel} says {pt_first} has been more confused since {date}; {he} is {age}.",
        "Pt asks whether the appointment on {date} with Dr. {dr_last} can move to {daymon}.",
        "returned call to {pt_first} at {phone}, no answer, left message.",
    ),
    (
        "{rn}",
        "Routed to {dr}. -- {rn}",
        "",
    ),
    " ",
)

ED = Style(
    "ed-triage",
    (
        "ED TRIAGE NOTE {date_time}",
        "Emergency Department -- {hospital}\nArrival: {date_time}  Acuity: {esi}",
    ),
    (
        "CC: {cc}. Pt is a {age} y/o {sex_f} BIBA from home at {street}.",
        "Triage vitals: T {temp} HR {hr} BP {bp} RR {rr} SpO2 {spo2}% RA. Pain {pain}/10.",
        "{pt_first} states symptoms began {day_ref} while at work.",
        "PCP: Dr. {dr_last}, {clinic}.",
        "Tetanus up to date. NKDA. Last meal at {clock}.",
        "Exam: {strength}/5 strength in {side} upper extremity, 2+ DP pulses, cap refill < 2 s.",
        "EKG: sinus tach at {hr}, no ST changes. Troponin {trop}.",
        "ID band checked: {pt_formal}, {mrn}, DOB {dob}.",
        "Emergency contact: {rel} ({reltype}) {phone}.",
        "Seen and examined with attending {dr}; dispo home with f/u in {n} days.",
        "Pt {pt_init} is {age} and lives independently in {city}, {state}.",
        "Last admission {monyear} at {hospital2} for {dx2}.",
        "{age}yo {sex_f} w/ {pmh} presenting with {cc}, onset {day_ref}.",
        "Pt is {age} y.o., ambulatory with cane at baseline per {reltype}.",
    ),
    (
        "Triage RN: {rn}",
        "{dr}",
    ),
    "\n",
)

#: Clinical sentences with no identifier: the content a model needs, mixed into every note.
CLINICAL = (
    "Lungs clear to auscultation bilaterally; no wheezes, rales or rhonchi.",
    "Abdomen soft, nontender, nondistended; bowel sounds present in all four quadrants.",
    "Extremities warm, {edema}+ pitting edema to mid-shin bilaterally.",
    "Given {lasix} mg IV Lasix with {uo2} ml UOP over {n} hours.",
    "Chest x-ray shows low lung volumes with bibasilar atelectasis, no focal consolidation.",
    "Continue aspirin 81 mg daily and atorvastatin {statin} mg qHS.",
    "Blood glucose {glu} mg/dL, covered with {units} units insulin lispro per sliding scale.",
    "PT consulted for mobility; ambulated {dist} feet with rolling walker, steady gait.",
    "Norco 5/325 1-2 tabs q4h PRN pain; Advair 250/50 one puff BID.",
    "Right IJ triple lumen and left radial A-line in place, sites clean and dry.",
    "Hgb {hgb}, plt {plt}, WBC {wbc}; lactate {lactate}.",
    "Swan-Ganz readings: CVP {cvp}, PA {pa}, wedge {wedge}, CI {ci}.",
    "Negative Murphy's sign; McBurney's point nontender.",
)

STYLES = (ICU, RADIOLOGY, DISCHARGE, REFERRAL, PHONE_MESSAGE, ED)
