"""Write `identifiers-300`: many near-identical records told apart only by an exact identifier.

300 support records in five kinds (payment failures, delayed shipments, locked accounts, failed
deployments, refunds), each a template filled with plausible details and one identifier (an order
number, an error code, a ticket, a build tag); 60 questions naming one identifier, one relevant
record each. An embedding model sees records of one kind as the same text; BM25's plain field
matches the identifier exactly. Deterministic: `python -m benchmarks.datasets.make_identifiers`.
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "identifiers-300"
KINDS = [
    (
        "Payment failure {code}",
        "The card payment for order {code} was declined by the issuing bank at checkout. The customer "
        "in {city} retried {n} times from the {channel} app before the basket expired; support refunded "
        "the pre-authorisation and asked the customer to contact the bank.",
        "Why was the payment for order {code} declined?",
        lambda r: f"ORD-{r.randrange(10000, 99999)}",
    ),
    (
        "Delayed shipment {code}",
        "Shipment {code} left the {city} warehouse {n} days late because the carrier missed the pickup "
        "window. The parcel was rebooked on the next {channel} route and the customer received a "
        "voucher for the delay.",
        "What delayed shipment {code}?",
        lambda r: f"SHP{r.randrange(100000, 999999)}",
    ),
    (
        "Account lockout {code}",
        "Error {code} locked the customer's account after {n} failed sign-ins from the {channel} client "
        "in {city}. Support verified the customer's identity, reset the password and removed the lock.",
        "How was the account lockout with error {code} resolved?",
        lambda r: f"AUTH-{r.choice('ABCDEFGH')}{r.randrange(100, 999)}",
    ),
    (
        "Failed deployment {code}",
        "Build {code} failed its canary stage in the {city} region: {n} health checks timed out on the "
        "{channel} service. The release was rolled back and the flaky check was fixed the next day.",
        "Why did build {code} fail?",
        lambda r: f"v{r.randrange(1, 9)}.{r.randrange(0, 30)}.{r.randrange(0, 200)}-rc{r.randrange(1, 9)}",
    ),
    (
        "Refund request {code}",
        "Ticket {code}: the customer in {city} asked for a refund of {n} items bought through the "
        "{channel} store. The items were returned unopened, so the refund was approved in full.",
        "Was the refund in ticket {code} approved?",
        lambda r: f"TCK-{r.randrange(1000, 9999)}-{r.choice('XYZQ')}",
    ),
]
CITIES = ["Lyon", "Leeds", "Porto", "Gdansk", "Turin", "Ghent", "Malmo", "Graz", "Cork", "Bilbao"]
CHANNELS = ["mobile", "web", "partner", "kiosk", "desktop"]


def main() -> None:
    rng = random.Random(19)
    corpus, queries, qrels, used = [], [], [], set()
    for i in range(300):
        title, text, question, make = KINDS[i % len(KINDS)]
        code = make(rng)
        while code in used:
            code = make(rng)
        used.add(code)
        fill = {"code": code, "city": rng.choice(CITIES), "channel": rng.choice(CHANNELS), "n": rng.randrange(2, 9)}
        doc_id = f"rec-{i:03d}"
        corpus.append({"_id": doc_id, "title": title.format(**fill), "text": text.format(**fill)})
        if i % 5 == i // 5 % 5 and len(queries) < 60:
            queries.append({"_id": f"q{len(queries):02d}", "text": question.format(**fill)})
            qrels.append((queries[-1]["_id"], doc_id))
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    (OUT / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus))
    (OUT / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries))
    rows = "".join(f"{q}\t{d}\t1\n" for q, d in qrels)
    (OUT / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    print(f"{len(corpus)} records, {len(queries)} questions in {OUT}")


if __name__ == "__main__":
    main()
