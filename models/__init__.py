"""The domain of the safeguarding review pipeline: plain Python, no Prefect, no SMTP, no sessions.

Where to find a rule of the procedure:
- working days and bank holidays: `models.calendar`
- every step, declared once with its owner, clock, anchor, source, form, who may record it and
  what recording it does: its process's module in `models.processes` (a `Step`); the clocks
  themselves and their settings: `models.timetable`
- the rules that change a case's path (looked-after child, care leaver, near miss, SIN implies
  a Rapid Review), each a `PathRule` with its source: `models.rules`
- when each process starts, what its steps' records do, when a case closes: the process's own
  module in `models.processes` (`case`, `rapid_review`, `cspr`, `action_plan`)
- the engine that applies them, a case and an event in, effects out: `models.procedure`
- what a step and a process are (`Step`, `Process`, `Wait`, `Act`) and the registry of them, with
  everything derived from the declarations: `models.registry`
- the forms people fill in (the referral and every human step): `models.forms`
- reminder, overdue and escalation timing: `models.alerts`
- the case store's tables: `models.schema` (Core) and `models.tables` (ORM)
"""
