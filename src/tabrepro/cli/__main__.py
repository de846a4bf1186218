"""``python -m tabrepro.cli``: the ``tabrepro`` command."""

from tabrepro.cli import main

main()
