"""The Typer layer: parse → request object → core call → render. Nothing heavy is imported here."""
