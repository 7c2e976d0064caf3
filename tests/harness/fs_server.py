"""Another team's MCP server with a file-writing tool (`mcp__fs__write_file` to Claude Code):
exo's PreToolUse hook must fence what it writes, since exo never sees the write itself."""

from __future__ import annotations

from pathlib import Path

from mcp.server import MCPServer

server = MCPServer("fs")


@server.tool()
def write_file(path: str, content: str) -> str:
    """Write a file (relative to the server's working directory)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(content)
    return f"wrote {path}"


if __name__ == "__main__":
    server.run()
