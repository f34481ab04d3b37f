#!/usr/bin/env bash
# Runs the test suite: `deno test -A --quiet tests/`, or the paths and flags given
# (`bash tests/run.sh tests/helpers/`, `bash tests/run.sh --filter freshBinding`).
# Output goes to the terminal as it comes and to a temp file; Deno's closing summary
# ("ok | 12 passed (3 steps) | 0 failed (5s)") is then reduced to one plain last line:
#   N passed, N failed
# Exit status: 0 only when the summary was found and nothing failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

# Test the whole tests/ folder unless a path was given.
has_path=0
for arg in "$@"; do
  if [[ "$arg" != -* && -e "$arg" ]]; then has_path=1; fi
done
if [[ $has_path -eq 0 ]]; then set -- "$@" tests/; fi

out=$(mktemp /tmp/kt-test.XXXXXX)
trap 'rm -f "$out"' EXIT

deno test -A --quiet "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

# The last summary line, colours stripped.
summary=$(sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$out" | grep -E '^(ok|FAILED) \| ' | tail -n 1)
if [[ -z "$summary" ]]; then
  echo "tests/run.sh: no test summary found (deno test exited with status $status)"
  echo "0 passed, 1 failed"
  exit 1
fi
passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | head -n 1 | grep -oE '[0-9]+')
failed=$(grep -oE '[0-9]+ failed' <<<"$summary" | head -n 1 | grep -oE '[0-9]+')
passed=${passed:-0}
failed=${failed:-0}
if [[ $status -ne 0 && $failed -eq 0 ]]; then
  # Deno failed after a clean summary (e.g. an error outside any test): count it.
  echo "tests/run.sh: deno test exited with status $status after an ok summary"
  failed=1
fi
echo "$passed passed, $failed failed"
if [[ $failed -ne 0 ]]; then exit 1; fi
exit 0
