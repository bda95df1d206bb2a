"""nomadtls_cli: the `nomadtls` command, a thin typer front-end over the nomadtls library.

It parses arguments and renders answers; every network and TLS decision stays in
`nomadtls`. The entry point is `nomadtls_cli.main:run`.
"""
