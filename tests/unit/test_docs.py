"""The README documents every configuration variable the services read, and nothing that is gone."""

import re
from pathlib import Path

from services.common import config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def settings_names() -> set[str]:
    classes = [
        config.ServiceSettings,
        config.EmbedSettings,
        config.IngestSettings,
        config.RetrieveSettings,
        config.GenerateSettings,
        config.GatewaySettings,
        config.LlmServerSettings,
    ]
    return {f"RAGMESH_{name.upper()}" for cls in classes for name in cls.model_fields}


def test_every_setting_is_in_the_configuration_table():
    table = README[README.index("## Configuration") : README.index("## Tests")]
    documented = set(re.findall(r"`(RAGMESH_[A-Z0-9_]+)`", table))
    assert settings_names() - documented == set(), "undocumented settings"
    assert documented - settings_names() == set(), "documented settings that no service reads"
