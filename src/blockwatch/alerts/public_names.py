"""How alerts and digests posted outside the staff's mailboxes (Telegram chats, which may be
public channels, and webhooks) name an agent vantage: by the status page's public label
("Kazakhstan, AS9198 (agent)"), never by its configured name, which may identify the person who
runs it. Email to staff keeps the configured names."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blockwatch.site.load import VantageRec
from blockwatch.site.model import public_vantages
from blockwatch.storage.models import Vantage


def agent_labels(s: Session, lang: str) -> dict[str, str]:
    """Agent vantage name -> its label on the public site in `lang` (the same function, so the
    same numbering when several agents share a country and network)."""
    vs = {i: VantageRec(i, n, k, c or "", a or "") for i, n, k, c, a in s.execute(
        select(Vantage.id, Vantage.name, Vantage.kind, Vantage.country, Vantage.asn)
        .where(Vantage.kind != "control").order_by(Vantage.id))}
    return {vs[i].name: p.label(lang) for i, p in public_vantages(vs).items()
            if p.kind == "agent"}
