"""The domain of the safeguarding review pipeline: plain Python, no Prefect, no SMTP, no sessions.

Where to find a rule of the procedure:
- working days and bank holidays: `models.calendar`
- every step, its clock, its anchor and its source: `models.timetable`
- the rules that change a case's path (looked-after child, care leaver, near miss, SIN implies
  a Rapid Review): `models.rules`
- the forms people fill in (the referral and every human step): `models.forms`
- the case store's tables: `models.tables`
"""
