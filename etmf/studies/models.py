"""The filing context every document needs: study, country, site."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from etmf.db import Base, UTCDateTime


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol_number: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(String(10))
    sponsor: Mapped[str] = mapped_column(String(200))
    therapeutic_area: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    tmf_model_version: Mapped[str] = mapped_column(String(20))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)

    countries: Mapped[list[Country]] = relationship(
        back_populates="study", order_by="Country.code", viewonly=True
    )
    sites: Mapped[list[Site]] = relationship(
        back_populates="study", order_by="Site.number", viewonly=True
    )


class Country(Base):
    __tablename__ = "countries"
    __table_args__ = (UniqueConstraint("study_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    code: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(100))

    study: Mapped[Study] = relationship(back_populates="countries", viewonly=True)


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("study_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    country_id: Mapped[int] = mapped_column(ForeignKey("countries.id"))
    number: Mapped[str] = mapped_column(String(20))
    institution: Mapped[str] = mapped_column(String(300))
    principal_investigator: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    activated_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=0)

    study: Mapped[Study] = relationship(back_populates="sites", viewonly=True)
    country: Mapped[Country] = relationship(viewonly=True)
