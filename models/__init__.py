"""The domain of the safeguarding review pipeline: plain Python, no Prefect, no SMTP, no sessions.

Where to find a rule of the procedure:
- working days and bank holidays: `models.calendar`
- every step, its owner, its clock, its anchor and its source: `models.timetable`
- the rules that change a case's path (looked-after child, care leaver, near miss, SIN implies
  a Rapid Review), each a `PathRule` with its source: `models.rules`
- what recording each step does, when each process starts, when a case closes: the process's own
  module in `models.processes` (`case`, `rapid_review`)
- the engine that applies them, a case and an event in, effects out: `models.procedure`
- what a process is (`Process`, `ItemSpec`, `Wait`) and the registry of them: `models.registry`
- the forms people fill in (the referral and every human step): `models.forms`
- reminder, overdue and escalation timing: `models.alerts`
- the case store's tables: `models.schema` (Core) and `models.tables` (ORM)
"""
