"""Test documents for the search contract: a small TMF of two studies, and bulk corpora."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from typing import Any

from etmf.search import SearchDoc

STUDY_A = 1
STUDY_B = 2


def make_doc(document_id: int, **overrides: Any) -> SearchDoc:
    """A plausible study-A trial-level document; override what the test is about."""
    doc = SearchDoc(
        document_id=document_id,
        study_id=STUDY_A,
        country=None,
        site_id=None,
        zone="01",
        section="01.01",
        artifact_id="01.01.01",
        artifact_name="Trial Master File Plan",
        title=f"Document {document_id}",
        status="draft",
        document_date=date(2024, 1, 15),
        person=None,
        language="en",
        version_label="1.0",
        text="General correspondence about the conduct of the trial.",
    )
    return replace(doc, **overrides)


def small_tmf() -> list[SearchDoc]:
    """Six documents: five in study A (trial level, sites 10 and 11), one in study B."""
    return [
        make_doc(1, title="TMF Plan", status="approved", document_date=date(2023, 3, 1),
                 person="Dr Alice Moreau",
                 text="This plan lists filing conventions. A quokka drawing marks the cover."),
        make_doc(2, site_id=10, country="DE", zone="05", section="05.04",
                 artifact_id="05.04.04", artifact_name="Monitoring Visit Report",
                 title="Monitoring visit report, site 10", status="in_qc",
                 document_date=date(2024, 2, 10), person="Bruno Keller",
                 text="The monitoring visit confirmed source data verification for ten "
                      "subjects and found no deviation."),
        make_doc(3, site_id=11, country="FR", zone="05", section="05.04",
                 artifact_id="05.04.04", artifact_name="Monitoring Visit Report",
                 title="Monitoring visit report, site 11", status="approved",
                 document_date=date(2024, 6, 1), person="Carla Ruiz",
                 text="Verification of the data source files is pending; the monitor "
                      "will return."),
        make_doc(4, site_id=10, country="DE", zone="08", section="08.02",
                 artifact_id="08.02.01", artifact_name="Curriculum Vitae",
                 title="Investigator CV", status="approved",
                 document_date=date(2024, 1, 20), person="Bruno Keller",
                 text="Professional experience in cardiology trials since 2009."),
        make_doc(5, study_id=STUDY_B, site_id=20, country="IT", zone="05", section="05.04",
                 artifact_id="05.04.04", artifact_name="Monitoring Visit Report",
                 title="Monitoring visit report, other study", status="approved",
                 document_date=date(2024, 2, 11), person="Dario Conti",
                 text="A quokka appears here too: the monitoring visit of the other study."),
        make_doc(6, title="<script>alert('t')</script> Protocol synopsis",
                 status="approved", document_date=date(2022, 11, 5),
                 text="<b>Protocol</b> synopsis & amendments <img src=x onerror=alert(1)> "
                      "for the protocol of record."),
    ]


COMMON_WORDS = ("patient", "study", "protocol", "visit", "site", "report", "monitor",
                "dose", "safety", "consent", "data", "review", "sample", "record")


def common_word_corpus(count: int, seed: int = 7, first_id: int = 1) -> list[SearchDoc]:
    """``count`` study-A documents made of a dozen frequent words, for slow phrase queries."""
    rng = random.Random(seed)
    docs = []
    for n in range(first_id, first_id + count):
        words = rng.choices(COMMON_WORDS, k=24)
        words[10:13] = ["patient", "study", "visit"]  # the phrase every document contains
        docs.append(make_doc(n, title=f"Record {n}", zone=rng.choice(("01", "05", "08")),
                             text=" ".join(words)))
    return docs
