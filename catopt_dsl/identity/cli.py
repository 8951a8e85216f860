"""``catoptc identity new|show|resolve``: make, inspect and resolve did:key identities.

The private key never reaches stdout or stderr: ``new`` prints only the DID and where the key
file went, ``show`` only public facts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["identity"]


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"catoptc: error: {message}", err=True)
    sys.exit(code)


@click.group(help="Create and inspect did:key identities (Ed25519).")
def identity() -> None:
    pass


@identity.command()
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Key file to create (mode 0600; an existing file is never replaced).")
def new(out: Path) -> None:
    """Generate a key pair; write the private key to OUT and print the DID."""
    from catopt_dsl.identity.keys import Identity, IdentityError

    ident = Identity.generate()
    try:
        ident.save(out)
    except IdentityError as exc:
        _fail(str(exc))
    click.echo(ident.did)
    click.echo(f"private key written to {out} (mode 0600); keep it secret", err=True)


@identity.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
def show(file: Path, as_json: bool) -> None:
    """Print the DID and public key of a key file (never the private key)."""
    from catopt_dsl.identity.did import multibase_ed25519
    from catopt_dsl.identity.keys import Identity, IdentityError, key_file_mode_warning

    try:
        ident = Identity.load(file)
    except IdentityError as exc:
        _fail(str(exc))
        return
    warning = key_file_mode_warning(file)
    if warning:
        click.echo(f"catoptc: warning: {warning}", err=True)
    info = {"did": ident.did, "publicKeyMultibase": multibase_ed25519(ident.public_key),
            "publicKeyHex": ident.public_key.hex()}
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
    else:
        click.echo(f"did:         {info['did']}")
        click.echo(f"public key:  {info['publicKeyMultibase']}")


@identity.command()
@click.argument("did")
@click.option("--format", "fmt", default="Ed25519VerificationKey2020", show_default=True,
              type=click.Choice(["Ed25519VerificationKey2020", "Multikey", "JsonWebKey2020", "Ed25519VerificationKey2018"]),
              help="publicKeyFormat of the verification methods (the 2018 suite is experimental).")
@click.option("--no-key-agreement", is_flag=True, help="Leave out the derived X25519 key agreement method.")
def resolve(did: str, fmt: str, no_key_agreement: bool) -> None:
    """Print the DID document of a did:key (the did:key method's document creation algorithm)."""
    from catopt_dsl.identity.did import DidError
    from catopt_dsl.identity.did import resolve as resolve_did

    try:
        doc = resolve_did(did, public_key_format=fmt, enable_encryption_key_derivation=not no_key_agreement,
                          enable_experimental_public_key_types=True)
    except DidError as exc:
        _fail(f"{did}: {exc} ({exc.code})")
        return
    click.echo(json.dumps(doc, indent=2))
