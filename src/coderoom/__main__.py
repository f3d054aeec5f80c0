"""`python -m coderoom` is the `coderoom` command."""

from coderoom.cli import main

main()
