"""Key files, the ``catoptc identity`` commands, and the owners mapping."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import cli
from catopt_dsl.identity import Identity, IdentityError, Owners, OwnersError

A = Identity.from_seed(bytes([1]) * 32)
B = Identity.from_seed(bytes([2]) * 32)


def test_save_is_0600_refuses_to_overwrite_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    A.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path).did == A.did
    before = path.read_bytes()
    with pytest.raises(IdentityError, match="refusing to overwrite"):
        B.save(path)
    assert path.read_bytes() == before  # nothing the user had is lost


def test_a_key_file_whose_did_was_swapped_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    doc = json.loads(A.to_json())
    doc["did"] = B.did  # someone edits the public part to impersonate B
    path.write_text(json.dumps(doc))
    with pytest.raises(IdentityError, match="does not belong to its private key"):
        Identity.load(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "expected JSON or PEM"),
        ('{"type": "other"}', "not a catopt identity file"),
        ('{"type": "catopt-identity", "version": 2}', "version 2"),
        ('{"type": "catopt-identity", "version": 1, "privateKeyMultibase": "z0"}', "base58"),
        ('{"type": "catopt-identity", "version": 1, "privateKeyMultibase": "z1111"}', "ed25519-priv"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PEM"),
    ],
)
def test_bad_key_files_give_one_line_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(IdentityError, match=match):
        Identity.load(path)


def test_pem_keys_load_and_missing_files_are_reported(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(A.seed())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "a.pem").write_bytes(pem)
    assert Identity.load(tmp_path / "a.pem").did == A.did
    with pytest.raises(IdentityError, match="no such key file"):
        Identity.load(tmp_path / "missing.key")
    with pytest.raises(IdentityError, match="is a directory"):
        Identity.load(tmp_path)


def test_repr_and_pickle_never_leak_more_than_needed() -> None:
    assert A.seed().hex() not in repr(A) and A.did in repr(A)
    clone = pickle.loads(pickle.dumps(A))
    assert clone.did == A.did and clone.sign(b"c", b"m") == A.sign(b"c", b"m")


def test_cli_new_show_resolve(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "me.key"
    res = runner.invoke(cli, ["identity", "new", "--out", str(out)])
    assert res.exit_code == 0, res.output
    did = res.stdout.strip()
    assert did.startswith("did:key:z6Mk")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    seed_mb = json.loads(out.read_text())["privateKeyMultibase"]
    assert seed_mb not in res.output  # the private key is never printed
    again = runner.invoke(cli, ["identity", "new", "--out", str(out)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    assert Identity.load(out).did == did

    shown = runner.invoke(cli, ["identity", "show", str(out), "--json"])
    assert shown.exit_code == 0 and seed_mb not in shown.output
    info = json.loads(shown.stdout)
    assert info["did"] == did and info["publicKeyMultibase"] == did.removeprefix("did:key:")

    os.chmod(out, 0o644)
    loose = runner.invoke(cli, ["identity", "show", str(out)])
    assert loose.exit_code == 0 and "should be 0600" in loose.stderr

    doc = runner.invoke(cli, ["identity", "resolve", did])
    assert doc.exit_code == 0 and json.loads(doc.stdout)["id"] == did
    bad = runner.invoke(cli, ["identity", "resolve", "did:key:zABC"])
    assert bad.exit_code == 1 and "error:" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(cli, ["identity", "show", str(tmp_path / "nope.key")])
    assert missing.exit_code == 1 and "no such key file" in missing.output


def test_owners_bindings_families_and_views() -> None:
    owners = Owners({"tenant_a": A.did, "site": B.did, "site[3]": A.did})
    assert owners.owner_of("tenant_a") == A.did
    assert owners.owner_of("site[0]") == B.did
    assert owners.owner_of("site[3]") == A.did  # the exact binding wins over the family's
    assert owners.owner_of("tenant_b") is None
    assert owners.objects_of(A.did, ["tenant_a", "site[0]", "site[3]"]) == ("tenant_a", "site[3]")
    assert owners.check(["tenant_a", "site[0]", "site[3]"]) == []
    assert owners.check(["tenant_a"]) == ["owner binding for `site`: the plan has no object or family of that name",
                                          "owner binding for `site[3]`: the plan has no object or family of that name"]
    assert Owners.from_json(owners.to_json()) == owners


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[]", "expected"),
        ('{"owners": {"a": "did:key:zABC"}}', "not a usable DID"),
        ('{"owners": {"a": 3}}', "not a usable DID"),
        ("{", "not JSON"),
    ],
)
def test_bad_key_rings(text: str, match: str) -> None:
    with pytest.raises(OwnersError, match=match):
        Owners.from_json(text)
