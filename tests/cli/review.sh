#!/bin/sh
# tests/cli/review.sh -- `earmark review` end to end over real HTTP and a real
# private PostgreSQL: see tests/cli/review_test.py.
exec python3 "$(dirname "$0")/review_test.py"
