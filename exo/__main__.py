"""`python -m exo` runs the exo command line."""

from exo.cli import main

main()
