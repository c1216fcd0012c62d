"""Print the README's configuration table from the settings classes (the README test checks it)."""

from services.common import config

CLASSES = [
    (config.ServiceSettings, "all"),
    (config.EmbedSettings, "embed"),
    (config.IngestSettings, "ingest"),
    (config.RetrieveSettings, "retrieve"),
    (config.GenerateSettings, "generate"),
    (config.GatewaySettings, "gateway"),
    (config.LlmServerSettings, "llm"),
]


def table() -> str:
    rows: dict[str, list] = {}
    for cls, service in CLASSES:
        for name, field in cls.model_fields.items():
            if cls is not config.ServiceSettings and name in config.ServiceSettings.model_fields:
                continue
            key = f"RAGMESH_{name.upper()}"
            if key in rows:
                rows[key][1].append(service)
                continue
            default = field.default
            if isinstance(default, int) and default >= config.MIB and default % config.MIB == 0:
                default = f"{default // config.MIB} MiB"
            shown = "unset" if default is None else (str(default) or "empty")
            rows[key] = [shown, [service], field.description]
    lines = ["| variable | default | used by | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | `{d}` | {', '.join(s)} | {desc} |" for k, (d, s, desc) in rows.items()]
    lines.append(
        "| `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | all | OTLP/gRPC endpoint for traces; unset = no export. "
        "Standard `OTEL_*` variables apply. |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
