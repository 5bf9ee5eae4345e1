#!/usr/bin/env bash
# The SMTP sink the tests send real mail to: aiosmtpd from PyPI.
set -euo pipefail
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "installing aiosmtpd (SMTP sink for tests)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore aiosmtpd
fi
