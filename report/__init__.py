"""`make report` / `python -m report`: every task's latest complete run on one page beside the original reports."""
