"""The `trainforge` command: one parser, with each group of subcommands in its own module."""

from __future__ import annotations

import argparse
import sys

from trainforge.cli import datasets, deliveries, jobs, server, tenants, tokens

# Each module exposes register(subparsers); a subcommand's parser sets `func(args) -> int`.
GROUPS = (server, jobs, datasets, tokens, tenants, deliveries)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="trainforge", description="Self-hosted distributed training.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
