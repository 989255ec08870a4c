"""Alerts and the daily digest: outbox, email (SMTP) and webhooks.

For the daemon: `queue_alerts`, `queue_digest`, then `deliver_outbox` (all async, idempotent,
safe to run every minute). For the CLI: `cmd_digest`, `cmd_alerts_test` in `.commands`.
"""

from blockwatch.alerts.deliver import DeliveryReport, deliver, deliver_outbox
from blockwatch.alerts.digest import queue_digest
from blockwatch.alerts.scan import queue_alerts

__all__ = ["DeliveryReport", "deliver", "deliver_outbox", "queue_alerts", "queue_digest"]
