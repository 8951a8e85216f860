"""Every catoptc command answers `-h` and `--help`, and says what each of its options does."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import cli


def _commands(cmd: click.Command = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _commands(cmd.commands[name], (*path, name))


COMMANDS = list(_commands())


def test_the_walk_finds_the_commands() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"check", "solve", "compile", "init", "fmt", "explain", "registry serve"} <= names
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "catoptc" for p, _ in COMMANDS])
def test_every_command_and_option_is_described(path: tuple[str, ...], cmd: click.Command) -> None:
    assert (cmd.help or cmd.short_help or "").strip(), f"`catoptc {' '.join(path)}` has no description"
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            assert (p.help or "").strip(), f"`catoptc {' '.join(path)}` option {'/'.join(p.opts)} has no help text"


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "catoptc" for p, _ in COMMANDS])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_dash_h_is_help_everywhere(path: tuple[str, ...], cmd: click.Command, flag: str) -> None:
    r = CliRunner().invoke(cli, [*path, flag], prog_name="catoptc")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Usage: catoptc"), r.stdout
    assert "-h, --help" in r.stdout


def test_shell_completion_as_the_readme_says() -> None:
    script = CliRunner().invoke(cli, [], prog_name="catoptc", env={"_CATOPTC_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_catoptc_completion" in script.stdout
    words = CliRunner().invoke(
        cli, [], prog_name="catoptc", env={"_CATOPTC_COMPLETE": "bash_complete", "COMP_WORDS": "catoptc fm", "COMP_CWORD": "1"}
    )
    assert "fmt" in words.stdout
