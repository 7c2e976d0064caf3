"""`python -m exo.mcp_server`: the same as `exo-mcp`."""

from exo.mcp_server import main

main()
