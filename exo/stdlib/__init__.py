"""The service layer: typed functions over the kernel, returning pydantic models the CLI and MCP render."""
