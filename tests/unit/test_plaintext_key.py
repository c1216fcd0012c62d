"""The CLI sends an API key without TLS only to this machine, unless told to (and then says so)."""

import pytest

from ragmesh_client.channel import ALLOW_PLAINTEXT, PlaintextRefused, check_plaintext, on_this_machine


@pytest.mark.parametrize(
    "addr, local",
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.10:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("unix:/tmp/gateway.sock", True),
        ("10.0.0.5:50051", False),
        ("192.168.1.20:443", False),
        ("[2001:db8::1]:50051", False),
        ("gateway.invalid:50051", False),  # unresolvable: not known to be here
    ],
)
def test_which_addresses_are_this_machine(addr, local):
    assert on_this_machine(addr) is local


def test_a_key_in_plaintext_off_this_machine_is_refused_unless_allowed(monkeypatch, capsys):
    monkeypatch.delenv(ALLOW_PLAINTEXT, raising=False)
    with pytest.raises(PlaintextRefused, match="refusing to send the API key in plaintext to 10.0.0.5:50051"):
        check_plaintext("10.0.0.5:50051", "rmk_secret", tls=False)
    check_plaintext("10.0.0.5:50051", "rmk_secret", tls=True)
    check_plaintext("10.0.0.5:50051", "", tls=False)  # nothing secret to send
    check_plaintext("127.0.0.1:50051", "rmk_secret", tls=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(ALLOW_PLAINTEXT, "1")
    check_plaintext("10.0.0.5:50051", "rmk_secret", tls=False)
    assert "WARNING: sending the API key in plaintext to 10.0.0.5:50051" in capsys.readouterr().err
