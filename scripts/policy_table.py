"""Print the README's role x method table from the policy module (a unit test checks it)."""

from rag.v1 import gateway_pb2
from services.gateway.policy import RANK, RULES, role_name

ROLES = sorted(RANK, key=RANK.get)


def table() -> str:
    methods = [m.name for m in gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].methods]
    lines = [
        "| method | " + " | ".join(role_name(r) for r in ROLES) + " | and |",
        "|---|" + "---|" * len(ROLES) + "---|",
    ]
    for method in methods:
        rule = RULES[method]
        cells = ["✓" if RANK[role] >= RANK[rule.role] else "—" for role in ROLES]
        lines.append(f"| `{method}` | " + " | ".join(cells) + f" | {rule.scope} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
