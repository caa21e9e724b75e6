#!/bin/sh
# tests/cli/hostile_text.sh -- text from outside shown by the CLIs (terminal
# controls, CSV formulas, JSON of names that are not UTF-8): see
# tests/cli/hostile_text_test.py.
exec python3 "$(dirname "$0")/hostile_text_test.py"
