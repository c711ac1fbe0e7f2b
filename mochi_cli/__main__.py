"""``python -m mochi_cli ...`` is the same as the ``mochi`` command."""

from mochi_cli.app import main

main()
