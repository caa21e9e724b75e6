#!/bin/sh
# tests/cli/serve.sh -- the HTTP service over real HTTP and a real private
# PostgreSQL: see tests/cli/serve_test.py.
exec python3 "$(dirname "$0")/serve_test.py"
