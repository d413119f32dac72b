"""Run the amrlite command line from a checkout: ``python cli.py fit ...``.

The commands live in ``amrlite/cli.py`` and are installed as the ``amrlite`` command; this file
stays at the top level (the design card's layout) without installing a generic top-level
``cli`` module into site-packages.
"""
from amrlite.cli import main

if __name__ == "__main__":
    main()
