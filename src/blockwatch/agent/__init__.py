"""The in-country agent: measures the collector's targets from its own network and reports.

Kept small on purpose (a Raspberry Pi, a volunteer's laptop): the probe engine, httpx and the
stdlib only. No pydantic, no ORM, no server, no templates."""
