"""The bento: its build context, a reproducible archive of it, and a BentoML store that a kill cannot empty."""
