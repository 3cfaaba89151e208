import typer


def synth_command(ctx: typer.Context) -> None:
    """placeholder until the synth helper lands"""
